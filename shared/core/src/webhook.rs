//! Zoho workflow webhooks: authenticating a delivery and normalising it into an inbox message.
//!
//! Zoho sends no event type and no standard signature: a webhook is the record wrapped in its entity key
//! (`{"item": {...}}`, or a form body whose value is that JSON), authenticated by whatever the rule was
//! configured with. TDS accepts a static secret in a header or query parameter (compared in constant
//! time) and `X-Zoho-Webhook-Signature` as hex HMAC-SHA256 over the raw body or over Zoho Billing's
//! canonical string (sorted query and form pairs, then the JSON body); see `../shared/ZOHO.md` §6.
//! The action comes from the route or an `action` query parameter (deletions need their own rule).
//! Every rejection says what was wrong and maps to the HTTP status the ingest answers with.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fields::parse_zoho_timestamp;
use crate::EntityKind;

/// Largest body accepted: an inbox message must fit SQS's 256 KiB with its envelope.
pub const MAX_BODY_BYTES: usize = 200 * 1024;

/// What happened to the record, as far as the webhook's rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A Created rule.
    Created,
    /// An Edited rule.
    Edited,
    /// A "Created or Edited" rule, or a rule that did not say: treat as "re-fetch and upsert".
    Upserted,
    /// A Deleted rule.
    Deleted,
}

impl Action {
    /// Parses `created`, `edited`, `upserted` (or `created_or_edited`) and `deleted`.
    pub fn parse(s: &str) -> Option<Action> {
        match s.trim().to_ascii_lowercase().as_str() {
            "created" | "create" => Some(Action::Created),
            "edited" | "edit" | "updated" => Some(Action::Edited),
            "upserted" | "created_or_edited" | "createdoredited" => Some(Action::Upserted),
            "deleted" | "delete" => Some(Action::Deleted),
            _ => None,
        }
    }
}

/// A webhook normalised for the inbox queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxMessage {
    /// Zoho organisation.
    pub org_id: String,
    /// Entity kind, from the payload's wrapper key.
    pub kind: EntityKind,
    /// The record's Zoho id.
    pub zoho_id: String,
    /// The record's `last_modified_time`, when the payload carries one.
    pub last_modified_time: Option<DateTime<Utc>>,
    /// What the rule says happened.
    pub action: Action,
    /// The record as delivered (without the wrapper).
    pub payload: Value,
    /// When TDS received it.
    pub received_at: DateTime<Utc>,
    /// Same delivery, same key: duplicates collapse on it.
    pub dedupe_key: String,
}

/// Where a static secret is expected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretPlace {
    /// In the named header.
    Header(String),
    /// In the named query parameter.
    Query(String),
}

/// How one organisation's webhooks authenticate. At least one of the two must be set; when both
/// are, both must pass. `Debug` never shows the secrets.
#[derive(Clone, Deserialize)]
pub struct WebhookAuth {
    /// A static secret and where it travels.
    pub static_secret: Option<(SecretPlace, String)>,
    /// The key of `X-Zoho-Webhook-Signature`.
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAuth")
            .field(
                "static_secret",
                &self.static_secret.as_ref().map(|(p, _)| (p, "***")),
            )
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// One delivery as the HTTP edge saw it. Its `Debug` shows header and query names only: their
/// values may carry the webhook secret.
#[derive(Clone)]
pub struct WebhookRequest<'a> {
    /// Organisation named by the route.
    pub org_id: &'a str,
    /// Action named by the route, if any (an `action` query parameter also counts).
    pub route_action: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Headers, names in lower case.
    pub headers: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl std::fmt::Debug for WebhookRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |pairs: &[(String, String)]| -> Vec<String> {
            pairs.iter().map(|(k, _)| format!("{k}=***")).collect()
        };
        f.debug_struct("WebhookRequest")
            .field("org_id", &self.org_id)
            .field("route_action", &self.route_action)
            .field("content_type", &self.content_type)
            .field("query", &names(self.query))
            .field("headers", &names(self.headers))
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl WebhookRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn format(&self) -> Result<BodyFormat, WebhookError> {
        BodyFormat::of(self.content_type)
    }
}

/// How a delivery's body is written, told by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// JSON (Zoho's default payload): `{"item": {...}}`; also when no type is given.
    Json,
    /// `application/x-www-form-urlencoded`: a field named after the entity (or `JSONString`)
    /// holds the record as JSON.
    Form,
}

impl BodyFormat {
    /// The format of a body sent with `content_type`; 415 for any type that is neither.
    pub fn of(content_type: Option<&str>) -> Result<BodyFormat, WebhookError> {
        let Some(ct) = content_type else {
            return Ok(BodyFormat::Json);
        };
        let base = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match base.as_str() {
            "application/x-www-form-urlencoded" => Ok(BodyFormat::Form),
            "" | "application/json" | "text/json" => Ok(BodyFormat::Json),
            b if b.ends_with("+json") => Ok(BodyFormat::Json),
            _ => Err(WebhookError::UnsupportedMediaType(ct.to_string())),
        }
    }
}

/// Which bytes an `X-Zoho-Webhook-Signature` HMAC-SHA256 covers. Sources disagree (ZOHO.md,
/// webhooks): Zoho Books/Inventory workflow webhooks sign the raw body; Zoho Billing signs a
/// canonical string. TDS accepts either, so a delivery verifies whichever Zoho signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// The raw body as received.
    RawBody,
    /// Query (and form) pairs sorted by key, `keyvalue` concatenated, then the raw body when JSON.
    Canonical,
}

impl SignatureScheme {
    /// Every scheme a signature is checked against, in order.
    pub const ALL: [SignatureScheme; 2] = [SignatureScheme::RawBody, SignatureScheme::Canonical];

    /// The bytes this scheme signs for `req`.
    pub fn signed_bytes<'r>(
        self,
        req: &'r WebhookRequest<'_>,
    ) -> Result<std::borrow::Cow<'r, [u8]>, WebhookError> {
        Ok(match self {
            SignatureScheme::RawBody => std::borrow::Cow::Borrowed(req.body),
            SignatureScheme::Canonical => {
                std::borrow::Cow::Owned(canonical_string(req, req.format()?).into_bytes())
            }
        })
    }
}

/// Why a delivery was refused; [`WebhookError::status`] is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong secret or signature (401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Empty or unreadable body (400).
    #[error("malformed webhook: {0}")]
    Malformed(String),
    /// Readable but unusable: unknown entity, missing id (422).
    #[error("unprocessable webhook: {0}")]
    Unprocessable(String),
    /// A body that is neither JSON nor a form (415).
    #[error("unsupported content type {0:?}: send application/json (Zoho's default payload) or application/x-www-form-urlencoded")]
    UnsupportedMediaType(String),
    /// Body over [`MAX_BODY_BYTES`] (413).
    #[error("webhook body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl WebhookError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::Unauthorized(_) => 401,
            WebhookError::Malformed(_) => 400,
            WebhookError::Unprocessable(_) => 422,
            WebhookError::TooLarge { .. } => 413,
            WebhookError::UnsupportedMediaType(_) => 415,
        }
    }

    /// A short, stable name of the refusal (the `Reason` of the `WebhooksRejected` metric).
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::Unauthorized(_) => "unauthorized",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::Unprocessable(_) => "unprocessable",
            WebhookError::TooLarge { .. } => "too_large",
            WebhookError::UnsupportedMediaType(_) => "unsupported_media_type",
        }
    }
}

/// Constant-time equality of two secrets (compares SHA-256 digests, so lengths do not leak either).
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Decodes `application/x-www-form-urlencoded` text.
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Checks the delivery against the organisation's webhook authentication.
pub fn verify(auth: &WebhookAuth, req: &WebhookRequest<'_>) -> Result<(), WebhookError> {
    // A blank secret is no secret: an empty HMAC key or an empty token would let anyone in.
    let static_secret = auth
        .static_secret
        .as_ref()
        .filter(|(_, s)| !s.trim().is_empty());
    let signing_secret = auth
        .signing_secret
        .as_deref()
        .filter(|s| !s.trim().is_empty());
    if static_secret.is_none() && signing_secret.is_none() {
        return Err(WebhookError::Unauthorized(format!(
            "no webhook secret is configured for organisation {} (an empty one counts as none)",
            req.org_id
        )));
    }
    if let Some((place, expected)) = static_secret {
        let (given, label) = match place {
            SecretPlace::Header(name) => (req.header(name), format!("header {name}")),
            SecretPlace::Query(name) => (req.query_param(name), format!("query parameter {name}")),
        };
        match given {
            None => {
                return Err(WebhookError::Unauthorized(format!(
                    "missing secret in {label}"
                )))
            }
            Some(g) if !secrets_match(g, expected) => {
                return Err(WebhookError::Unauthorized(format!(
                    "wrong secret in {label}"
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(key) = signing_secret {
        let given = req.header("x-zoho-webhook-signature").ok_or_else(|| {
            WebhookError::Unauthorized("missing X-Zoho-Webhook-Signature header".into())
        })?;
        let Ok(given) = hex::decode(given.trim()) else {
            return Err(WebhookError::Unauthorized(
                "X-Zoho-Webhook-Signature is not hex".into(),
            ));
        };
        let mut ok = false;
        for scheme in SignatureScheme::ALL {
            // A body of a type TDS cannot read has no canonical string; it is refused (415) later.
            let Ok(signed) = scheme.signed_bytes(req) else {
                continue;
            };
            ok |= Hmac::<Sha256>::new_from_slice(key.as_bytes())
                .map(|mut mac| {
                    mac.update(&signed);
                    // verify_slice compares in constant time.
                    mac.verify_slice(&given).is_ok()
                })
                .unwrap_or(false);
        }
        if !ok {
            return Err(WebhookError::Unauthorized(
                "X-Zoho-Webhook-Signature does not match the body".into(),
            ));
        }
    }
    Ok(())
}

/// Zoho Billing's string to sign: query and form pairs sorted by key, `keyvalue` concatenated, then
/// the raw body when it is JSON.
fn canonical_string(req: &WebhookRequest<'_>, format: BodyFormat) -> String {
    let mut pairs: Vec<(String, String)> = req.query.to_vec();
    let form = format == BodyFormat::Form;
    if form {
        pairs.extend(parse_urlencoded(&String::from_utf8_lossy(req.body)));
    }
    pairs.sort();
    let mut s: String = pairs.iter().map(|(k, v)| format!("{k}{v}")).collect();
    if !form {
        s.push_str(&String::from_utf8_lossy(req.body));
    }
    s
}

/// Wrapper keys Zoho uses, mapped to kinds (webhooks for derived kinds do not exist).
fn kind_of_key(key: &str) -> Option<EntityKind> {
    let kind: EntityKind = key.parse().ok()?;
    kind.zoho_id_field().map(|_| kind)
}

/// The wrapper keys of Zoho's webhooks (each kind's single-record key, from the kind table).
fn known_keys() -> String {
    crate::kind::SPECS
        .iter()
        .filter_map(|s| s.endpoint.map(|e| e.single_key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns an authenticated delivery into an inbox message.
pub fn normalize(
    req: &WebhookRequest<'_>,
    received_at: DateTime<Utc>,
) -> Result<InboxMessage, WebhookError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge {
            size: req.body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let format = req.format()?;
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(WebhookError::Malformed("the body is empty".into()));
    }
    let text = std::str::from_utf8(req.body)
        .map_err(|_| WebhookError::Malformed("the body is not UTF-8".into()))?;
    let wrapper: Value = if format == BodyFormat::Form {
        let pairs = parse_urlencoded(text);
        let found = pairs.iter().find_map(|(k, v)| {
            if k == "JSONString" {
                serde_json::from_str::<Value>(v).ok()
            } else {
                kind_of_key(k)
                    .and_then(|_| serde_json::from_str::<Value>(v).ok())
                    .map(|record| {
                        let mut m = serde_json::Map::new();
                        m.insert(k.clone(), record);
                        Value::Object(m)
                    })
            }
        });
        found.ok_or_else(|| {
            WebhookError::Unprocessable(format!(
                "the form body has no field named after an entity ({}) holding the record as JSON",
                known_keys()
            ))
        })?
    } else {
        serde_json::from_str(text)
            .map_err(|e| WebhookError::Malformed(format!("the body is not JSON: {e}")))?
    };
    let Value::Object(map) = wrapper else {
        return Err(WebhookError::Malformed(
            "the body must be a JSON object like {\"item\": {...}}".into(),
        ));
    };
    let (key, record) = map
        .into_iter()
        .find(|(k, v)| v.is_object() && kind_of_key(k).is_some())
        .ok_or_else(|| {
            WebhookError::Unprocessable(format!(
                "no known entity wrapper in the body; expected one of: {}",
                known_keys()
            ))
        })?;
    let kind = kind_of_key(&key).ok_or_else(|| {
        WebhookError::Unprocessable(format!(
            "unknown entity {key:?}; expected one of: {}",
            known_keys()
        ))
    })?;
    let id_field = kind.zoho_id_field().unwrap_or("id");
    let zoho_id = match record.get(id_field) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => {
            return Err(WebhookError::Unprocessable(format!(
                "the {key} record has no {id_field}"
            )))
        }
    };
    if !crate::fields::is_zoho_id(&zoho_id) {
        return Err(WebhookError::Unprocessable(format!(
            "the {key} record's {id_field} {:?} is not a Zoho id (1 to 32 digits)",
            crate::fields::truncate(&zoho_id, 40)
        )));
    }
    let last_modified_time = record
        .get("last_modified_time")
        .and_then(Value::as_str)
        .and_then(parse_zoho_timestamp);
    let action_text = req.route_action.or_else(|| req.query_param("action"));
    let action = match action_text {
        None => Action::Upserted,
        Some(a) => Action::parse(a).ok_or_else(|| {
            WebhookError::Unprocessable(format!(
                "unknown action {a:?}; expected created, edited, upserted or deleted"
            ))
        })?,
    };
    // The time and the content: Zoho's retries of one delivery share a key, while two edits within
    // the same second (Zoho's times have one-second precision) do not.
    let content = hex::encode(crate::row::content_hash(&record));
    let version = match last_modified_time {
        Some(t) => format!("{}|{content}", t.to_rfc3339()),
        None => content,
    };
    let dedupe_key = hex::encode(Sha256::digest(
        format!(
            "{}|{}|{}|{}|{}",
            req.org_id,
            kind.as_str(),
            zoho_id,
            version,
            serde_json::to_string(&action).unwrap_or_default()
        )
        .as_bytes(),
    ));
    Ok(InboxMessage {
        org_id: req.org_id.to_string(),
        kind,
        zoho_id,
        last_modified_time,
        action,
        payload: record,
        received_at,
        dedupe_key,
    })
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn body_formats_follow_the_content_type() {
        assert_eq!(BodyFormat::of(None), Ok(BodyFormat::Json));
        assert_eq!(
            BodyFormat::of(Some("application/json; charset=UTF-8")),
            Ok(BodyFormat::Json)
        );
        assert_eq!(
            BodyFormat::of(Some("application/vnd.zoho+json")),
            Ok(BodyFormat::Json)
        );
        assert_eq!(
            BodyFormat::of(Some("Application/X-WWW-Form-Urlencoded")),
            Ok(BodyFormat::Form)
        );
        assert_eq!(
            BodyFormat::of(Some("text/xml")),
            Err(WebhookError::UnsupportedMediaType("text/xml".into()))
        );
    }

    #[test]
    fn each_signature_scheme_signs_its_own_bytes() {
        let query = [
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ];
        let req = WebhookRequest {
            org_id: "1",
            route_action: None,
            content_type: Some("application/json"),
            query: &query,
            headers: &[],
            body: b"{\"item\":{}}",
        };
        let raw = SignatureScheme::RawBody.signed_bytes(&req).unwrap();
        let canonical = SignatureScheme::Canonical.signed_bytes(&req).unwrap();
        assert_eq!(&*raw, b"{\"item\":{}}");
        assert_eq!(&*canonical, b"a1b2{\"item\":{}}");
    }
}
