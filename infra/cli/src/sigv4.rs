//! AWS Signature Version 4 for the admin API on AWS: its HTTP API has an IAM authorizer, so each
//! request is signed (service `execute-api`) with the caller's credentials from the usual AWS chain
//! (environment, profile, SSO, web identity, container or instance role). Temporary credentials
//! are fetched again shortly before they expire, so a long `tds sync --wait` keeps signing.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Credentials this close to their expiry are fetched again before signing.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Signs requests as one AWS principal in one region.
pub struct Signer {
    provider: SharedCredentialsProvider,
    current: Mutex<Credentials>,
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
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [id, "execute-api", region, "amazonaws", "com"]
        | [id, "execute-api", region, "amazonaws", "com", "cn"]
            if !id.is_empty() && !region.is_empty() =>
        {
            Some(region.to_string())
        }
        _ => None,
    }
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
        Signer::new(provider, region).await
    }

    /// A signer with credentials from `provider` (fetched now, to fail early without any).
    pub async fn new(
        provider: SharedCredentialsProvider,
        region: String,
    ) -> Result<Signer, String> {
        let credentials = fetch(&provider).await?;
        Ok(Signer {
            provider,
            current: Mutex::new(credentials),
            region,
        })
    }

    /// The credentials to sign with at `now`: the current ones, or fresh ones when they expire
    /// within [`REFRESH_BEFORE`].
    async fn credentials(&self, now: SystemTime) -> Result<Credentials, String> {
        let current = self
            .current
            .lock()
            .map_err(|_| "credentials lock poisoned")?
            .clone();
        match current.expiry() {
            Some(expiry) if expiry <= now + REFRESH_BEFORE => {
                let fresh = fetch(&self.provider).await?;
                *self
                    .current
                    .lock()
                    .map_err(|_| "credentials lock poisoned")? = fresh.clone();
                Ok(fresh)
            }
            _ => Ok(current),
        }
    }

    /// The headers (`authorization`, `x-amz-date`, and `x-amz-security-token` for temporary
    /// credentials) that sign `method url` with this body at `time`.
    pub async fn headers(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        let identity: Identity = self.credentials(time).await?.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
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

async fn fetch(provider: &SharedCredentialsProvider) -> Result<Credentials, String> {
    provider.provide_credentials().await.map_err(|e| {
        format!(
            "no AWS credentials to sign admin API requests with ({e}); set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use aws_credential_types::provider::future;

    use super::*;

    /// Hands out credentials valid for `lifetime` from the time it is asked, counting the calls.
    #[derive(Debug)]
    struct Expiring {
        calls: Arc<AtomicUsize>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Expiring {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("ASIAKEY{n}"),
                "secret",
                Some(format!("session-{n}")),
                Some(SystemTime::now() + self.lifetime),
                "test",
            )))
        }
    }

    fn key_of(headers: &[(String, String)]) -> String {
        let auth = &headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        auth.split("Credential=")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_fetched_again_before_signing() {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Expiring {
            calls: calls.clone(),
            lifetime: Duration::from_secs(3600),
        });
        let signer = Signer::new(provider, "eu-west-1".into()).await.unwrap();
        let url = "https://abc.execute-api.eu-west-1.amazonaws.com/api/tds/health";
        let now = SystemTime::now();
        // Valid for an hour: the same key signs, nothing is fetched.
        let first = signer.headers("GET", url, b"", now).await.unwrap();
        assert_eq!(key_of(&first), "ASIAKEY0");
        assert!(first
            .iter()
            .any(|(k, v)| k == "x-amz-security-token" && v == "session-0"));
        let later = signer
            .headers("GET", url, b"", now + Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(
            (key_of(&later), calls.load(Ordering::SeqCst)),
            ("ASIAKEY0".into(), 1)
        );
        // Within five minutes of the expiry: new credentials, kept for the next requests.
        let near = now + Duration::from_secs(3600 - 120);
        let renewed = signer.headers("GET", url, b"", near).await.unwrap();
        assert_eq!(key_of(&renewed), "ASIAKEY1");
        let again = signer
            .headers("GET", url, b"", now + Duration::from_secs(700))
            .await
            .unwrap();
        assert_eq!(
            (key_of(&again), calls.load(Ordering::SeqCst)),
            ("ASIAKEY1".into(), 2)
        );
    }

    #[test]
    fn the_region_comes_from_an_execute_api_host_only() {
        assert_eq!(
            region_of("https://abc123.execute-api.eu-central-1.amazonaws.com").as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            region_of("https://abc123.execute-api.cn-north-1.amazonaws.com.cn/").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(region_of("http://127.0.0.1:8080"), None);
        assert_eq!(region_of("https://admin.example.com"), None);
        assert_eq!(region_of("https://execute-api.example.com.evil"), None);
        assert_eq!(
            region_of("https://abc.execute-api.eu-west-1.amazonaws.com.example.net"),
            None
        );
    }
}
