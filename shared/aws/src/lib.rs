//! AWS adapters of TDS's ports (`tds_core::ports`): SQS for the queue and its dead-letter redrive,
//! EventBridge for domain events, Secrets Manager for secrets, S3 for blobs (item images). Each adapter only translates between
//! the port and the SDK; errors become `PortError`s (throttling, timeouts and 5xx are retriable; the
//! rest are not) and never carry message bodies or secret values. Endpoints follow the SDK's standard
//! configuration, so `AWS_ENDPOINT_URL` points them at moto in tests.

pub mod bootstrap;
pub mod emf;

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use chrono::{TimeZone, Utc};
use tds_core::ports::{
    BlobStore, DomainEvent, EventBus, PortError, PortFuture, Queue, QueueStats, ReceivedMessage,
    Redrive, SecretStore,
};

/// Loads the SDK configuration the standard way (environment, profile, instance role).
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Maps an SDK error to a port error: throttling, timeouts, dispatch failures and 5xx are retriable.
fn port_error<E, R>(port: &'static str, what: &str, err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_string();
            let message = format!(
                "{what}: {code}: {}",
                service.err().message().unwrap_or("no message")
            );
            let retriable = code.contains("Throttl")
                || code.contains("RequestThrottled")
                || code.contains("ServiceUnavailable")
                || code.contains("InternalError")
                || code.contains("InternalFailure");
            if retriable {
                PortError::Unavailable { port, message }
            } else if code.contains("NonExistent")
                || code.contains("NotFound")
                || code.contains("NoSuchKey")
            {
                PortError::NotFound {
                    port,
                    what: message,
                }
            } else {
                PortError::Rejected { port, message }
            }
        }
        SdkError::ConstructionFailure(_) => PortError::Rejected {
            port,
            message: format!("{what}: invalid request"),
        },
        _ => PortError::Unavailable {
            port,
            message: format!("{what}: {}", aws_sdk_sqs::error::DisplayErrorContext(&err)),
        },
    }
}

const SQS: &str = "SQS";

/// An SQS queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    /// Where the oldest message's age is read, if anywhere (SQS has it only as a metric).
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(config: &aws_config::SdkConfig, url: impl Into<String>) -> SqsQueue {
        SqsQueue {
            client: aws_sdk_sqs::Client::new(config),
            url: url.into(),
            cloudwatch: None,
        }
    }

    /// Reads the oldest message's age in [`Queue::stats`] from CloudWatch (`AWS/SQS`
    /// `ApproximateAgeOfOldestMessage`, the latest datapoint of the last 15 minutes; the caller needs
    /// `cloudwatch:GetMetricData`). Without it, or when CloudWatch has no datapoint or fails, the age
    /// is unknown.
    pub fn with_age_from_cloudwatch(mut self, config: &aws_config::SdkConfig) -> SqsQueue {
        self.cloudwatch = Some(aws_sdk_cloudwatch::Client::new(config));
        self
    }

    /// The queue's name (the URL's last segment): its `QueueName` dimension in CloudWatch.
    pub fn name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }

    /// The latest `ApproximateAgeOfOldestMessage` of the last 15 minutes, in seconds.
    async fn oldest_age(&self) -> Option<u64> {
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
        let cloudwatch = self.cloudwatch.as_ref()?;
        let now = std::time::SystemTime::now();
        let metric = Metric::builder()
            .namespace("AWS/SQS")
            .metric_name("ApproximateAgeOfOldestMessage")
            .dimensions(
                Dimension::builder()
                    .name("QueueName")
                    .value(self.name())
                    .build(),
            )
            .build();
        let query = MetricDataQuery::builder()
            .id("age")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(60)
                    .stat("Maximum")
                    .build(),
            )
            .build();
        let out = cloudwatch
            .get_metric_data()
            .metric_data_queries(query)
            .start_time((now - Duration::from_secs(900)).into())
            .end_time(now.into())
            .scan_by(ScanBy::TimestampDescending)
            .send()
            .await;
        match out {
            Ok(out) => out
                .metric_data_results()
                .first()
                .and_then(|r| r.values().first().copied())
                .map(|v| v.max(0.0) as u64),
            Err(e) => {
                tracing::warn!(queue = self.name(), error = %port_error("CloudWatch", "GetMetricData", e), "oldest message age unknown");
                None
            }
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn receive_with(
        &self,
        max: usize,
        visibility: Option<i32>,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        let max = i32::try_from(max.clamp(1, 10)).unwrap_or(10);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .set_visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| port_error(SQS, "ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let attr = |name: MessageSystemAttributeName| {
                    m.attributes().and_then(|a| a.get(&name)).cloned()
                };
                let sent_ms = attr(MessageSystemAttributeName::SentTimestamp)
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
                ReceivedMessage {
                    message_id: m.message_id().unwrap_or_default().to_string(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                    sent_at: Utc
                        .timestamp_millis_opt(sent_ms)
                        .single()
                        .unwrap_or_else(Utc::now),
                }
            })
            .collect())
    }

    /// The queue ARN.
    pub async fn arn(&self) -> Result<String, PortError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| port_error(SQS, "GetQueueAttributes", e))?;
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| PortError::Rejected {
                port: SQS,
                message: "queue has no ARN attribute".into(),
            })
    }
}

impl Queue for SqsQueue {
    fn send(&self, body: String) -> PortFuture<'_, String> {
        Box::pin(async move {
            let out = self
                .client
                .send_message()
                .queue_url(&self.url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| port_error(SQS, "SendMessage", e))?;
            Ok(out.message_id().unwrap_or_default().to_string())
        })
    }

    fn send_batch(&self, bodies: Vec<String>) -> PortFuture<'_, Vec<Result<String, PortError>>> {
        Box::pin(async move {
            if bodies.is_empty() {
                return Ok(Vec::new());
            }
            if bodies.len() > 10 {
                return Err(PortError::Rejected {
                    port: SQS,
                    message: format!("a batch holds at most 10 messages, got {}", bodies.len()),
                });
            }
            let entries = bodies
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(b)
                        .build()
                        .map_err(|e| PortError::Rejected {
                            port: SQS,
                            message: format!("batch entry {i}: {e}"),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let n = entries.len();
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| port_error(SQS, "SendMessageBatch", e))?;
            let mut results: Vec<Result<String, PortError>> = (0..n)
                .map(|_| {
                    Err(PortError::Unavailable {
                        port: SQS,
                        message: "no result for batch entry".into(),
                    })
                })
                .collect();
            for ok in out.successful() {
                if let Ok(i) = ok.id().parse::<usize>() {
                    if i < n {
                        results[i] = Ok(ok.message_id().to_string());
                    }
                }
            }
            for failed in out.failed() {
                if let Ok(i) = failed.id().parse::<usize>() {
                    if i < n {
                        let message =
                            format!("{}: {}", failed.code(), failed.message().unwrap_or(""));
                        results[i] = Err(if failed.sender_fault() {
                            PortError::Rejected { port: SQS, message }
                        } else {
                            PortError::Unavailable { port: SQS, message }
                        });
                    }
                }
            }
            Ok(results)
        })
    }

    fn receive(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(self.receive_with(max, None))
    }

    fn peek(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(self.receive_with(max, Some(0)))
    }

    fn delete<'a>(&'a self, receipt_handle: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(receipt_handle)
                .send()
                .await
                .map_err(|e| port_error(SQS, "DeleteMessage", e))?;
            Ok(())
        })
    }

    fn release<'a>(&'a self, receipt_handle: &'a str, delay: Duration) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(receipt_handle)
                .visibility_timeout(i32::try_from(delay.as_secs()).unwrap_or(43_200).min(43_200))
                .send()
                .await
                .map_err(|e| port_error(SQS, "ChangeMessageVisibility", e))?;
            Ok(())
        })
    }

    fn stats(&self) -> PortFuture<'_, QueueStats> {
        Box::pin(async move {
            let out = self
                .client
                .get_queue_attributes()
                .queue_url(&self.url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .map_err(|e| port_error(SQS, "GetQueueAttributes", e))?;
            let get = |name: QueueAttributeName| {
                out.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            Ok(QueueStats {
                visible: get(QueueAttributeName::ApproximateNumberOfMessages),
                in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                // SQS exposes the oldest message's age only as a CloudWatch metric.
                oldest_age_secs: self.oldest_age().await,
            })
        })
    }
}

/// Redrive from an SQS dead-letter queue to its source: `StartMessageMoveTask` where the service has
/// it, otherwise (moto, some regions' endpoints) receive, send to the source, then delete.
#[derive(Clone, Debug)]
pub struct SqsRedrive {
    /// The source queue.
    pub source: SqsQueue,
    /// Its dead-letter queue.
    pub dead_letter: SqsQueue,
}

impl SqsRedrive {
    /// The fallback: moves up to `max` messages by hand. A message is deleted from the DLQ only
    /// after the source accepted it, so nothing is lost (a crash in between duplicates, which the
    /// version-gated store absorbs).
    pub async fn redrive_by_hand(&self, max: usize) -> Result<usize, PortError> {
        let mut moved = 0;
        while moved < max {
            let batch = self.dead_letter.receive((max - moved).min(10)).await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                self.source.send(m.body).await?;
                self.dead_letter.delete(&m.receipt_handle).await?;
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Moves the dead letters with these ids: receives the queue through (each receive hides what
    /// it got, so the next one sees further), moves the chosen ones (sent to the source before they
    /// are deleted) and makes the others visible again.
    pub async fn redrive_chosen(&self, ids: &[String]) -> Result<usize, PortError> {
        let mut moved = 0;
        let mut others = Vec::new();
        let mut outcome = Ok(());
        while moved < ids.len() {
            let batch = match self.dead_letter.receive(10).await {
                Ok(batch) if !batch.is_empty() => batch,
                Ok(_) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            for m in batch {
                if !ids.contains(&m.message_id) {
                    others.push(m.receipt_handle);
                    continue;
                }
                match self.source.send(m.body).await {
                    Ok(_) => {
                        self.dead_letter.delete(&m.receipt_handle).await?;
                        moved += 1;
                    }
                    Err(e) => {
                        others.push(m.receipt_handle);
                        outcome = Err(e);
                    }
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        for handle in &others {
            self.dead_letter.release(handle, Duration::ZERO).await?;
        }
        outcome.map(|()| moved)
    }
}

impl Redrive for SqsRedrive {
    fn redrive_ids<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, usize> {
        Box::pin(self.redrive_chosen(ids))
    }

    /// Fewer than the queue holds: moved by hand, exactly `max`. All of them: one
    /// `StartMessageMoveTask` (SQS moves the whole queue; the count is the depth when it started),
    /// or by hand where the task is unavailable (moto, older regions). A task already running is
    /// reported, not doubled by a manual move beside it.
    fn redrive(&self, max: usize) -> PortFuture<'_, usize> {
        Box::pin(async move {
            let before =
                usize::try_from(self.dead_letter.stats().await?.visible).unwrap_or(usize::MAX);
            if max < before {
                return self.redrive_by_hand(max).await;
            }
            let (dlq_arn, source_arn) = (self.dead_letter.arn().await?, self.source.arn().await?);
            let task = self
                .dead_letter
                .client
                .start_message_move_task()
                .source_arn(dlq_arn)
                .destination_arn(source_arn)
                .send()
                .await;
            match task {
                Ok(_) => Ok(before),
                Err(e) => {
                    let detail = aws_sdk_sqs::error::DisplayErrorContext(&e).to_string();
                    if detail.to_ascii_lowercase().contains("already") {
                        return Err(PortError::Unavailable {
                            port: "SQS",
                            message: "a dead-letter move task is already running; try again when it has finished".into(),
                        });
                    }
                    tracing::info!(
                        error = %detail,
                        "StartMessageMoveTask unavailable; redriving by receive, send and delete"
                    );
                    self.redrive_by_hand(max).await
                }
            }
        })
    }
}

const EVENTS: &str = "EventBridge";

/// The `tds` EventBridge bus.
#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    /// The bus named `bus_name`.
    pub fn new(config: &aws_config::SdkConfig, bus_name: impl Into<String>) -> EventBridgeBus {
        EventBridgeBus {
            client: aws_sdk_eventbridge::Client::new(config),
            bus_name: bus_name.into(),
        }
    }
}

impl EventBus for EventBridgeBus {
    fn publish(&self, events: Vec<DomainEvent>) -> PortFuture<'_, ()> {
        Box::pin(async move {
            for chunk in events.chunks(10) {
                let entries: Vec<PutEventsRequestEntry> = chunk
                    .iter()
                    .map(|e| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus_name)
                            .source("tds")
                            .detail_type(&e.detail_type)
                            .detail(e.detail.to_string())
                            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                                e.time.timestamp_millis(),
                            ))
                            .build()
                    })
                    .collect();
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| port_error(EVENTS, "PutEvents", e))?;
                if out.failed_entry_count() > 0 {
                    let first = out
                        .entries()
                        .iter()
                        .find_map(|e| {
                            e.error_code()
                                .map(|c| format!("{c}: {}", e.error_message().unwrap_or("")))
                        })
                        .unwrap_or_default();
                    return Err(PortError::Unavailable {
                        port: EVENTS,
                        message: format!(
                            "{} of {} events failed ({first})",
                            out.failed_entry_count(),
                            chunk.len()
                        ),
                    });
                }
            }
            Ok(())
        })
    }
}

const SECRETS: &str = "Secrets Manager";

/// Secrets Manager.
#[derive(Clone, Debug)]
pub struct SecretsManagerStore {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerStore {
    /// A store using `config`.
    pub fn new(config: &aws_config::SdkConfig) -> SecretsManagerStore {
        SecretsManagerStore {
            client: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

impl SecretStore for SecretsManagerStore {
    fn secret<'a>(&'a self, name: &'a str) -> PortFuture<'a, String> {
        Box::pin(async move {
            let out = self
                .client
                .get_secret_value()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| port_error(SECRETS, &format!("GetSecretValue {name}"), e))?;
            out.secret_string()
                .map(str::to_string)
                .ok_or_else(|| PortError::Rejected {
                    port: SECRETS,
                    message: format!("secret {name} has no string value"),
                })
        })
    }
}

const S3: &str = "S3";

/// An S3 bucket as the blob store (item images). Objects are written with their content type; keys
/// are used as given.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    /// A store writing to `bucket`. With an endpoint override (`AWS_ENDPOINT_URL`, as for moto),
    /// path-style addressing is used, since such endpoints have no per-bucket host names.
    pub fn new(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> S3BlobStore {
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        S3BlobStore {
            client: aws_sdk_s3::Client::from_conf(s3),
            bucket: bucket.into(),
        }
    }
}

impl BlobStore for S3BlobStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        content_type: &'a str,
    ) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| port_error(S3, &format!("PutObject {key}"), e))?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> PortFuture<'a, (String, Vec<u8>)> {
        Box::pin(async move {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| port_error(S3, &format!("GetObject {key}"), e))?;
            let content_type = out
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| PortError::Unavailable {
                    port: S3,
                    message: format!("GetObject {key}: reading the body failed: {e}"),
                })?;
            Ok((content_type, bytes.into_bytes().to_vec()))
        })
    }
}
