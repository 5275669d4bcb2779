//! OAuth credentials and where they come from. The secret-store port ([`CredentialSource`]) has a
//! static twin here (JSON from a file or an environment variable, the same document the Secrets
//! Manager secret holds); the Secrets Manager adapter lives with the AWS adapters.
//! Secret values never appear in `Debug`, `Display`, logs or errors.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use serde::Deserialize;

use crate::config::{DataCentre, OrgConfig};
use crate::ZohoError;

/// A secret string: readable only through [`SecretString::expose`], printed as `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> SecretString {
        SecretString(s.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The OAuth client and refresh token of one credential.
#[derive(Clone, Debug, Deserialize)]
pub struct Credentials {
    /// `client_id` (not secret).
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: SecretString,
    /// The long-lived refresh token.
    pub refresh_token: SecretString,
}

/// Boxed future returned by [`CredentialSource`].
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, ZohoError>> + Send + 'a>>;

/// The secret-store port: credentials by credential id.
pub trait CredentialSource: Send + Sync {
    /// The credentials for `credential_id`.
    fn credentials<'a>(&'a self, credential_id: &'a str) -> CredentialFuture<'a>;
}

/// One organisation in the credentials document.
#[derive(Deserialize)]
struct OrgEntry {
    organization_id: String,
    #[serde(default)]
    credential_id: Option<String>,
    client_id: String,
    client_secret: SecretString,
    refresh_token: SecretString,
    #[serde(default)]
    data_centre: Option<String>,
    #[serde(default)]
    accounts_server: Option<String>,
    #[serde(default)]
    api_domain: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    organizations: Vec<OrgEntry>,
}

/// Credentials held in memory, loaded from the credentials document:
/// `{"organizations": [{"organization_id", "client_id", "client_secret", "refresh_token",
/// "data_centre" | "accounts_server" + "api_domain", "credential_id"?}]}`.
pub struct StaticCredentials {
    by_credential: HashMap<String, Credentials>,
    orgs: Vec<OrgConfig>,
}

impl StaticCredentials {
    /// Parses the credentials document; `default_dc` applies where an entry names no servers.
    /// Errors say which entry and field is wrong, never a secret value.
    pub fn from_json(json: &str, default_dc: DataCentre) -> Result<StaticCredentials, ZohoError> {
        let doc: Document = serde_json::from_str(json).map_err(|e| {
            ZohoError::Config(format!(
                "Zoho credentials document is invalid at line {} column {}: {}",
                e.line(),
                e.column(),
                // serde's message names the field and the expected type, not values of strings.
                e.to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or("malformed")
            ))
        })?;
        let mut by_credential = HashMap::new();
        let mut orgs = Vec::new();
        for (i, e) in doc.organizations.into_iter().enumerate() {
            let mut org = match (&e.accounts_server, &e.api_domain, &e.data_centre) {
                (Some(a), Some(api), _) => OrgConfig::at(&e.organization_id, a, api),
                (None, None, Some(dc)) => OrgConfig::in_data_centre(
                    &e.organization_id,
                    dc.parse().map_err(|m| {
                        ZohoError::Config(format!("organizations[{i}].data_centre: {m}"))
                    })?,
                ),
                (None, None, None) => OrgConfig::in_data_centre(&e.organization_id, default_dc),
                _ => {
                    return Err(ZohoError::Config(format!(
                        "organizations[{i}]: give accounts_server and api_domain together, or data_centre"
                    )))
                }
            };
            if let Some(c) = &e.credential_id {
                org.credential_id = c.clone();
            }
            by_credential.insert(
                org.credential_id.clone(),
                Credentials {
                    client_id: e.client_id,
                    client_secret: e.client_secret,
                    refresh_token: e.refresh_token,
                },
            );
            orgs.push(org);
        }
        Ok(StaticCredentials {
            by_credential,
            orgs,
        })
    }

    /// Reads the document from `TDS_ZOHO_CREDENTIALS` (inline JSON) or `TDS_ZOHO_CREDENTIALS_FILE`.
    pub fn from_env(default_dc: DataCentre) -> Result<StaticCredentials, ZohoError> {
        if let Ok(json) = std::env::var("TDS_ZOHO_CREDENTIALS") {
            return Self::from_json(&json, default_dc);
        }
        match std::env::var("TDS_ZOHO_CREDENTIALS_FILE") {
            Ok(path) => {
                let json = std::fs::read_to_string(&path).map_err(|e| {
                    ZohoError::Config(format!("cannot read TDS_ZOHO_CREDENTIALS_FILE {path}: {e}"))
                })?;
                Self::from_json(&json, default_dc)
            }
            Err(_) => Err(ZohoError::Config(
                "set TDS_ZOHO_CREDENTIALS (JSON) or TDS_ZOHO_CREDENTIALS_FILE (path)".into(),
            )),
        }
    }

    /// One credential, for tests and tools.
    pub fn single(credential_id: impl Into<String>, credentials: Credentials) -> StaticCredentials {
        StaticCredentials {
            by_credential: HashMap::from([(credential_id.into(), credentials)]),
            orgs: Vec::new(),
        }
    }

    /// The organisations the document configures.
    pub fn organizations(&self) -> &[OrgConfig] {
        &self.orgs
    }
}

impl CredentialSource for StaticCredentials {
    fn credentials<'a>(&'a self, credential_id: &'a str) -> CredentialFuture<'a> {
        Box::pin(async move {
            self.by_credential
                .get(credential_id)
                .cloned()
                .ok_or_else(|| {
                    ZohoError::Config(format!(
                        "no Zoho credentials for credential {credential_id:?}"
                    ))
                })
        })
    }
}

/// The credentials document kept in a secret store and read again when it may have changed: when
/// an organisation or credential is asked for that it does not have (a newly added organisation, the
/// "deploy, then fill the secret" flow, a rotation), at most once per [`SecretDirectory::MIN_RELOAD`],
/// and when its copy is older than [`SecretDirectory::TTL`]. A warm process thereby follows changes
/// without a restart.
pub struct SecretDirectory {
    secrets: std::sync::Arc<dyn tds_core::ports::SecretStore>,
    name: String,
    default_dc: DataCentre,
    current: std::sync::RwLock<std::sync::Arc<StaticCredentials>>,
    read_at: std::sync::Mutex<std::time::Instant>,
    min_reload: std::time::Duration,
}

impl SecretDirectory {
    /// Least time between two reads caused by an unknown organisation or credential.
    pub const MIN_RELOAD: std::time::Duration = std::time::Duration::from_secs(30);
    /// Age after which the document is read again before listing organisations.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(300);

    /// Reads the document `name` from `secrets` (an error says what is wrong with it).
    pub async fn load(
        secrets: std::sync::Arc<dyn tds_core::ports::SecretStore>,
        name: impl Into<String>,
        default_dc: DataCentre,
    ) -> Result<SecretDirectory, ZohoError> {
        let name = name.into();
        let doc = read(&*secrets, &name).await?;
        Ok(SecretDirectory {
            current: std::sync::RwLock::new(std::sync::Arc::new(StaticCredentials::from_json(
                &doc, default_dc,
            )?)),
            secrets,
            name,
            default_dc,
            read_at: std::sync::Mutex::new(std::time::Instant::now()),
            min_reload: Self::MIN_RELOAD,
        })
    }

    /// Another least time between reads caused by an unknown organisation or credential (tests use 0).
    pub fn with_min_reload(mut self, min_reload: std::time::Duration) -> SecretDirectory {
        self.min_reload = min_reload;
        self
    }

    /// Reads the document again unless it was read less than the minimum reload time ago (an
    /// unknown organisation or credential was asked for); true when it did.
    pub async fn reload_on_miss(&self) -> Result<bool, ZohoError> {
        self.reload_if_older(self.min_reload).await
    }

    /// The organisations of the current copy.
    pub fn organizations(&self) -> Vec<OrgConfig> {
        self.snapshot().orgs.clone()
    }

    fn snapshot(&self) -> std::sync::Arc<StaticCredentials> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the document again if the last read is older than `min_age`; true when it did.
    pub async fn reload_if_older(&self, min_age: std::time::Duration) -> Result<bool, ZohoError> {
        {
            let mut at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
            if at.elapsed() < min_age {
                return Ok(false);
            }
            *at = std::time::Instant::now();
        }
        let doc = read(&*self.secrets, &self.name).await?;
        let fresh = StaticCredentials::from_json(&doc, self.default_dc)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(fresh);
        tracing::info!("Zoho credentials document read again");
        Ok(true)
    }
}

async fn read(secrets: &dyn tds_core::ports::SecretStore, name: &str) -> Result<String, ZohoError> {
    secrets
        .secret(name)
        .await
        .map_err(|e| ZohoError::Config(format!("cannot read the Zoho credentials secret: {e}")))
}

impl CredentialSource for SecretDirectory {
    fn credentials<'a>(&'a self, credential_id: &'a str) -> CredentialFuture<'a> {
        Box::pin(async move {
            if let Some(c) = self.snapshot().by_credential.get(credential_id) {
                return Ok(c.clone());
            }
            // A credential added or renamed since the last read: read again (rate-limited).
            self.reload_on_miss().await?;
            self.snapshot().credentials(credential_id).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_parses_and_secrets_never_print() {
        let json = r#"{"organizations": [
            {"organization_id": "1", "client_id": "1000.A", "client_secret": "topsecret1", "refresh_token": "1000.rt1", "data_centre": "ca"},
            {"organization_id": "2", "client_id": "1000.B", "client_secret": "topsecret2", "refresh_token": "1000.rt2",
             "accounts_server": "http://127.0.0.1:9/", "api_domain": "http://127.0.0.1:9"}
        ]}"#;
        let creds = StaticCredentials::from_json(json, DataCentre::Us).unwrap();
        let orgs = creds.organizations();
        assert_eq!(orgs[0].accounts_url, "https://accounts.zohocloud.ca");
        assert_eq!(orgs[1].accounts_url, "http://127.0.0.1:9");
        let c = creds.by_credential.get("1").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("rt1"),
            "{shown}"
        );
        assert_eq!(c.refresh_token.expose(), "1000.rt1");

        let err = StaticCredentials::from_json(
            r#"{"organizations": [{"organization_id": "1", "client_id": "x", "client_secret": "topsecret", "refresh_token": "r", "data_centre": "mars"}]}"#,
            DataCentre::Us,
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("organizations[0].data_centre"),
            "{err}"
        );
        assert!(!err.to_string().contains("topsecret"));
        let err = StaticCredentials::from_json(
            r#"{"organizations": [{"organization_id": "1"}]}"#,
            DataCentre::Us,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("client_id"), "{err}");
    }
}
