//! Outbound webhooks the way Zoho's workflow rules send them: for each change made through the control
//! API, a POST of the record wrapped in its entity key (`{"item": {...}}`, JSON by default, or a form
//! body), with a static secret in a header and/or query parameter and an optional
//! `X-Zoho-Webhook-Signature` (HMAC-SHA256, hex; over the raw body, or Zoho Billing's canonical string).
//! No event type is sent (Zoho sends none); `action=created|edited|deleted` is added to the URL only
//! when configured, as a per-rule URL would. Switches make deliveries duplicate, late, reordered or lost.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::demo::Rng;
use crate::Simulator;

/// Where and how to deliver webhooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Target URL (per organisation and entity routes are the caller's choice).
    pub url: String,
    /// `json` (Zoho's default payload) or `form` (x-www-form-urlencoded, the record JSON under its entity key).
    pub format: String,
    /// Static secret header `(name, value)`.
    pub header_secret: Option<(String, String)>,
    /// Static secret query parameter `(name, value)`.
    pub query_secret: Option<(String, String)>,
    /// Secret for `X-Zoho-Webhook-Signature`; none means no signature header.
    pub signing_secret: Option<String>,
    /// `raw` (hex HMAC of the body) or `canonical` (sorted query and form pairs, then the JSON body).
    pub signature_scheme: String,
    /// Add `action=created|edited|deleted` to the URL.
    pub include_action: bool,
    /// Fraction of deliveries sent twice.
    pub duplicate_rate: f64,
    /// Fraction of deliveries never sent.
    pub drop_rate: f64,
    /// Delay before each delivery, in milliseconds.
    pub delay_ms: u64,
    /// Deliver consecutive changes in reverse order (pairs are swapped).
    pub reorder: bool,
    /// Attempts on non-2xx answers (Zoho's retry policy), the first included.
    pub attempts: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            format: "json".into(),
            header_secret: None,
            query_secret: None,
            signing_secret: None,
            signature_scheme: "raw".into(),
            include_action: false,
            duplicate_rate: 0.0,
            drop_rate: 0.0,
            delay_ms: 0,
            reorder: false,
            attempts: 3,
        }
    }
}

/// One change to deliver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Entity wrapper key (`item`, `invoice`, `payment`, ...).
    pub key: String,
    /// `created`, `edited` or `deleted`.
    pub action: String,
    /// The record after the change (before it, for deletions).
    pub record: Value,
}

/// A delivery as it was sent: what a receiver that answered 2xx has acknowledged.
#[derive(Debug, Clone)]
pub struct SentDelivery {
    /// The URL, query included.
    pub url: String,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Headers sent (secrets included: this is the simulator's own record).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A built HTTP request.
struct Request {
    url: String,
    content_type: &'static str,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac_hex(secret: &str, data: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

fn build(config: &WebhookConfig, delivery: &Delivery) -> Request {
    let record_json = crate::json::to_zoho_json(&delivery.record);
    let mut query: Vec<(String, String)> = Vec::new();
    if config.include_action {
        query.push(("action".into(), delivery.action.clone()));
    }
    if let Some((k, v)) = &config.query_secret {
        query.push((k.clone(), v.clone()));
    }
    let (content_type, body, form_pairs) = if config.format == "form" {
        let pairs = vec![(delivery.key.clone(), record_json.clone())];
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        (
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            pairs,
        )
    } else {
        let body = format!("{{{}:{record_json}}}", Value::String(delivery.key.clone()));
        ("application/json", body.into_bytes(), Vec::new())
    };
    let mut headers = Vec::new();
    if let Some((k, v)) = &config.header_secret {
        headers.push((k.clone(), v.clone()));
    }
    if let Some(secret) = &config.signing_secret {
        let signed: Vec<u8> = if config.signature_scheme == "canonical" {
            let mut pairs: Vec<(String, String)> =
                query.iter().chain(form_pairs.iter()).cloned().collect();
            pairs.sort();
            let mut s: String = pairs.iter().map(|(k, v)| format!("{k}{v}")).collect();
            if form_pairs.is_empty() {
                s.push_str(&String::from_utf8_lossy(&body));
            }
            s.into_bytes()
        } else {
            body.clone()
        };
        headers.push(("X-Zoho-Webhook-Signature".into(), hmac_hex(secret, &signed)));
    }
    let mut url = config.url.clone();
    if !query.is_empty() {
        let q = query
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&q);
    }
    Request {
        url,
        content_type,
        body,
        headers,
    }
}

/// Runs the delivery loop for `sim` until the channel closes.
pub(crate) async fn deliver_loop(sim: Simulator, mut rx: mpsc::UnboundedReceiver<Delivery>) {
    let http = reqwest::Client::new();
    let mut rng = Rng::new(0xBEEF);
    let mut held: Option<Delivery> = None;
    loop {
        let next = if held.is_some() {
            match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                Ok(d) => d,
                Err(_) => {
                    // Nothing followed the held delivery: send it alone.
                    if let Some(h) = held.take() {
                        send_one(&sim, &http, &mut rng, h).await;
                    }
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(delivery) = next else { break };
        let Some(config) = sim.with_state(|s| s.webhooks.clone()) else {
            settle(&sim);
            continue;
        };
        if config.reorder {
            match held.take() {
                None => held = Some(delivery),
                Some(earlier) => {
                    send_one(&sim, &http, &mut rng, delivery).await;
                    send_one(&sim, &http, &mut rng, earlier).await;
                }
            }
        } else {
            send_one(&sim, &http, &mut rng, delivery).await;
        }
    }
}

/// One queued delivery is over (sent, dropped or given up on).
fn settle(sim: &Simulator) {
    sim.with_state(|s| s.stats.webhooks_pending = s.stats.webhooks_pending.saturating_sub(1));
}

async fn send_one(sim: &Simulator, http: &reqwest::Client, rng: &mut Rng, delivery: Delivery) {
    let Some(config) = sim.with_state(|s| s.webhooks.clone()) else {
        settle(sim);
        return;
    };
    if rng.unit() < config.drop_rate {
        sim.with_state(|s| s.stats.webhooks_dropped += 1);
        settle(sim);
        return;
    }
    let copies = if rng.unit() < config.duplicate_rate {
        2
    } else {
        1
    };
    let request = build(&config, &delivery);
    let delay = Duration::from_millis(config.delay_ms);
    let http = http.clone();
    let sim = sim.clone();
    let attempts = config.attempts.max(1);
    let task = async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        for _ in 0..copies {
            let mut delivered = false;
            for attempt in 0..attempts {
                let mut req = http
                    .post(&request.url)
                    .header("Content-Type", request.content_type)
                    .body(request.body.clone());
                for (k, v) in &request.headers {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => {
                        delivered = true;
                        break;
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_millis(100 * (u64::from(attempt) + 1)))
                            .await
                    }
                }
            }
            sim.with_state(|s| {
                if delivered {
                    s.stats.webhooks_sent += 1;
                    s.acknowledged.push(SentDelivery {
                        url: request.url.clone(),
                        content_type: request.content_type,
                        headers: request.headers.clone(),
                        body: request.body.clone(),
                    });
                } else {
                    s.stats.webhooks_failed += 1;
                }
            });
        }
        settle(&sim);
    };
    if delay.is_zero() {
        task.await;
    } else {
        // Late deliveries do not hold back the ones after them.
        tokio::spawn(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_and_signatures() {
        let d = Delivery {
            key: "item".into(),
            action: "edited".into(),
            record: json!({"item_id": "1", "rate": 5.0}),
        };
        let mut config = WebhookConfig {
            url: "http://h/hook".into(),
            signing_secret: Some("s3cretKey1234".into()),
            include_action: true,
            query_secret: Some(("token".into(), "abc".into())),
            ..WebhookConfig::default()
        };
        let r = build(&config, &d);
        assert_eq!(r.url, "http://h/hook?action=edited&token=abc");
        assert_eq!(
            String::from_utf8(r.body.clone()).unwrap(),
            r#"{"item":{"item_id":"1","rate":5.000000}}"#
        );
        let sig = &r
            .headers
            .iter()
            .find(|(k, _)| k == "X-Zoho-Webhook-Signature")
            .unwrap()
            .1;
        assert_eq!(sig, &hmac_hex("s3cretKey1234", &r.body));

        config.signature_scheme = "canonical".into();
        let r = build(&config, &d);
        let expected = format!(
            "actionedited{}{}",
            "tokenabc",
            String::from_utf8(r.body.clone()).unwrap()
        );
        let sig = &r
            .headers
            .iter()
            .find(|(k, _)| k == "X-Zoho-Webhook-Signature")
            .unwrap()
            .1;
        assert_eq!(sig, &hmac_hex("s3cretKey1234", expected.as_bytes()));

        config.format = "form".into();
        let r = build(&config, &d);
        assert_eq!(r.content_type, "application/x-www-form-urlencoded");
        assert!(String::from_utf8(r.body)
            .unwrap()
            .starts_with("item=%7B%22item_id%22"));
    }
}
