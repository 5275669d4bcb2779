//! The composition root: the typed settings every entry point reads once ([`Settings`]) and the one
//! builder of the services ([`App`]), used by the Lambda mains, `tds up`, the test harness and the
//! benchmarks alike. It knows ports, not their implementations: the AWS adapters and the local ones
//! are handed in by the caller.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tds_core::metrics::Metrics;
use tds_core::ports::{BlobStore, EventBus, Queue};
use tds_store::Store;
use tds_zoho::{DataCentre, ZohoClient};

use crate::comparator::Comparator;
use crate::images::ImageSync;
use crate::inbox::Processor;
use crate::jobs::SyncSettings;
use crate::runner::SyncRunner;
use crate::stock::StockPoller;
use crate::writer::EntityWriter;

/// Settings read from the environment once, with the same strictness everywhere: a variable that is
/// set but does not parse is an error naming it; an unset or blank one takes its default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sync tuning (`TDS_SYNC_OVERLAP_SECS`, `TDS_JOB_TIME_BUDGET_SECS`).
    pub sync: SyncSettings,
    /// Default low-stock threshold (`TDS_LOW_STOCK_THRESHOLD`, default 5).
    pub low_stock_threshold: Decimal,
    /// Zoho data centre (`TDS_ZOHO_DC`, default `us`).
    pub data_centre: DataCentre,
    /// Days a webhook receipt is kept after it was applied (`TDS_RECEIPT_RETENTION_DAYS`, default 30;
    /// 0 keeps them for ever). At least [`MIN_RECEIPT_RETENTION_DAYS`]: a receipt must outlive every
    /// redelivery of its message, and SQS keeps a message 14 days at most.
    pub receipt_retention_days: u32,
}

/// The shortest receipt retention: one day more than SQS's longest message retention.
pub const MIN_RECEIPT_RETENTION_DAYS: u32 = 15;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sync: SyncSettings::default(),
            low_stock_threshold: Decimal::from(5),
            data_centre: DataCentre::Us,
            receipt_retention_days: 30,
        }
    }
}

impl Settings {
    /// The settings of this process's environment.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings `lookup` gives (a variable's value by name).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let mut s = Settings::default();
        if let Some(secs) = parse::<u32>(&lookup, "TDS_SYNC_OVERLAP_SECS")? {
            s.sync.overlap = chrono::Duration::seconds(secs.into());
        }
        if let Some(secs) = parse::<u64>(&lookup, "TDS_JOB_TIME_BUDGET_SECS")? {
            s.sync.job_time_budget = Duration::from_secs(secs);
        }
        if let Some(t) = parse::<Decimal>(&lookup, "TDS_LOW_STOCK_THRESHOLD")? {
            if t.is_sign_negative() {
                return Err(format!("TDS_LOW_STOCK_THRESHOLD: {t} is negative"));
            }
            s.low_stock_threshold = t;
        }
        if let Some(dc) = parse::<DataCentre>(&lookup, "TDS_ZOHO_DC")? {
            s.data_centre = dc;
        }
        if let Some(days) = parse::<u32>(&lookup, "TDS_RECEIPT_RETENTION_DAYS")? {
            if days != 0 && days < MIN_RECEIPT_RETENTION_DAYS {
                return Err(format!(
                    "TDS_RECEIPT_RETENTION_DAYS: {days} is too short: 0 (keep for ever) or at least \
                     {MIN_RECEIPT_RETENTION_DAYS} days, since a receipt must outlive every redelivery \
                     of its message (SQS keeps one up to 14 days)"
                ));
            }
            s.receipt_retention_days = days;
        }
        Ok(s)
    }
}

/// `name` parsed as `T`; `None` when unset or blank; an error naming the variable when it does not parse.
fn parse<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    match lookup(name) {
        Some(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("{name}: {:?} is not valid: {e}", v.trim())),
        _ => Ok(None),
    }
}

/// A service asked of an [`App`] that lacks a part it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} needs {part}, and none is configured")]
pub struct MissingPart {
    /// The service asked for.
    pub service: &'static str,
    /// What it needs.
    pub part: &'static str,
}

/// The application: the ports and settings, and the services built from them, each with only what
/// it uses (the stock poller needs no queue; the comparator needs the inbox for heal runs, not the
/// dead-letter queue).
#[derive(Clone)]
pub struct App {
    store: Store,
    zoho: Arc<ZohoClient>,
    events: Arc<dyn EventBus>,
    inbox: Option<Arc<dyn Queue>>,
    dead_letters: Option<Arc<dyn Queue>>,
    blobs: Option<Arc<dyn BlobStore>>,
    settings: Settings,
    metrics: Metrics,
}

impl App {
    /// An application on `store`, reading Zoho through `zoho`, publishing to `events`.
    pub fn new(
        store: Store,
        zoho: Arc<ZohoClient>,
        events: Arc<dyn EventBus>,
        settings: Settings,
    ) -> App {
        App {
            store,
            zoho,
            events,
            inbox: None,
            dead_letters: None,
            blobs: None,
            settings,
            metrics: Metrics::disabled(),
        }
    }

    /// Where the services count what they do (give the Zoho client the same handle, in its
    /// `ClientSettings`, for its calls to count too).
    pub fn with_metrics(mut self, metrics: Metrics) -> App {
        self.metrics = metrics;
        self
    }

    /// The services' metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The inbox queue (sync jobs travel on it).
    pub fn with_inbox(mut self, inbox: Arc<dyn Queue>) -> App {
        self.inbox = Some(inbox);
        self
    }

    /// The dead-letter queue of the inbox.
    pub fn with_dead_letters(mut self, dead_letters: Arc<dyn Queue>) -> App {
        self.dead_letters = Some(dead_letters);
        self
    }

    /// Where item images go (image runs follow item runs only when this is set).
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> App {
        self.blobs = Some(blobs);
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Zoho client.
    pub fn zoho(&self) -> &Arc<ZohoClient> {
        &self.zoho
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The one write path.
    pub fn writer(&self) -> EntityWriter {
        EntityWriter::new(self.store.clone(), self.events.clone())
            .with_metrics(self.metrics.clone())
    }

    /// The sync runner (needs the inbox).
    pub fn runner(&self) -> Result<SyncRunner, MissingPart> {
        let inbox = self.inbox.clone().ok_or(MissingPart {
            service: "the sync runner",
            part: "the inbox queue",
        })?;
        let mut runner = SyncRunner::new(self.zoho.clone(), self.writer(), inbox)
            .with_settings(self.settings.sync.clone());
        if let Some(blobs) = &self.blobs {
            runner = runner.with_images(ImageSync::new(
                self.zoho.clone(),
                self.writer(),
                blobs.clone(),
            ));
        }
        Ok(runner)
    }

    /// The inbox applier (needs the inbox and the dead-letter queue).
    pub fn processor(&self) -> Result<Processor, MissingPart> {
        let dead_letters = self.dead_letters.clone().ok_or(MissingPart {
            service: "the inbox processor",
            part: "the dead-letter queue",
        })?;
        Ok(Processor::new(
            self.zoho.clone(),
            self.writer(),
            dead_letters,
            self.runner()?,
        ))
    }

    /// The comparator (needs the inbox, for heal runs).
    pub fn comparator(&self) -> Result<Comparator, MissingPart> {
        Ok(
            Comparator::new(self.zoho.clone(), self.writer(), self.runner()?)
                .with_receipt_retention(self.settings.receipt_retention_days),
        )
    }

    /// The stock poller.
    pub fn poller(&self) -> StockPoller {
        StockPoller::new(
            self.zoho.clone(),
            self.writer(),
            self.settings.low_stock_threshold,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn unset_or_blank_variables_take_their_defaults() {
        let s = settings(&[("TDS_LOW_STOCK_THRESHOLD", "  ")]).unwrap();
        assert_eq!(s.low_stock_threshold, Decimal::from(5));
        assert_eq!(s.data_centre, DataCentre::Us);
        assert_eq!(s.sync.overlap, chrono::Duration::seconds(60));
        assert_eq!(s.receipt_retention_days, 30);
    }

    #[test]
    fn set_variables_are_read() {
        let s = settings(&[
            ("TDS_LOW_STOCK_THRESHOLD", "2.5"),
            ("TDS_ZOHO_DC", "eu"),
            ("TDS_SYNC_OVERLAP_SECS", "120"),
            ("TDS_JOB_TIME_BUDGET_SECS", "30"),
            ("TDS_RECEIPT_RETENTION_DAYS", "90"),
        ])
        .unwrap();
        assert_eq!(s.receipt_retention_days, 90);
        let keep = settings(&[("TDS_RECEIPT_RETENTION_DAYS", "0")]).unwrap();
        assert_eq!(keep.receipt_retention_days, 0, "0 keeps receipts for ever");
        assert_eq!(s.low_stock_threshold, Decimal::new(25, 1));
        assert_eq!(s.data_centre, DataCentre::Eu);
        assert_eq!(s.sync.overlap, chrono::Duration::seconds(120));
        assert_eq!(s.sync.job_time_budget, Duration::from_secs(30));
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_variable_and_the_value() {
        for (name, value) in [
            ("TDS_LOW_STOCK_THRESHOLD", "few"),
            ("TDS_LOW_STOCK_THRESHOLD", "-1"),
            ("TDS_ZOHO_DC", "mars"),
            ("TDS_SYNC_OVERLAP_SECS", "-5"),
            ("TDS_JOB_TIME_BUDGET_SECS", "soon"),
            ("TDS_RECEIPT_RETENTION_DAYS", "-1"),
            // Shorter than a message can wait in SQS: a redelivery would find no receipt.
            ("TDS_RECEIPT_RETENTION_DAYS", "14"),
        ] {
            let e = settings(&[(name, value)]).unwrap_err();
            assert!(e.contains(name), "{e}");
            assert!(e.contains(value.trim_start_matches('-')), "{e}");
        }
    }
}
