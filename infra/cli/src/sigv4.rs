//! AWS Signature Version 4 for the admin API on AWS: its HTTP API has an IAM authorizer, so each
//! request is signed (service `execute-api`) with the caller's credentials from the usual AWS chain
//! (environment, profile, SSO, web identity, container or instance role).

use std::time::SystemTime;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Signs requests as one AWS principal in one region.
pub struct Signer {
    identity: Identity,
    region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The region of an `https://{id}.execute-api.{region}.amazonaws.com[.cn]` URL.
pub fn region_of(api: &str) -> Option<String> {
    let host = api.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    let (_, service, region) = (labels.next()?, labels.next()?, labels.next()?);
    (service == "execute-api" && labels.next() == Some("amazonaws") && !region.is_empty())
        .then(|| region.to_string())
}

impl Signer {
    /// Credentials from the default chain; the region from the API's host name, else from the AWS
    /// configuration (`AWS_REGION`, the profile).
    pub async fn from_environment(api: &str) -> Result<Signer, String> {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let region = region_of(api)
            .or_else(|| config.region().map(|r| r.to_string()))
            .ok_or_else(|| {
                format!("cannot tell the AWS region of {api}: set AWS_REGION (or use the execute-api URL)")
            })?;
        let provider = config
            .credentials_provider()
            .ok_or("no AWS credentials provider is configured")?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            format!(
                "no AWS credentials to sign admin API requests with ({e}); set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        })?;
        Ok(Signer {
            identity: credentials.into(),
            region,
        })
    }

    /// The headers (`authorization`, `x-amz-date`, and `x-amz-security-token` for temporary
    /// credentials) that sign `method url` with this body at `time`.
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("execute-api")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let request =
            SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body))
                .map_err(|e| format!("cannot sign a request to {url}: {e}"))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| format!("cannot sign a request to {url}: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}
