//! What a sync run is, as recorded: its mode (full, incremental, heal, a stock poll's mode) and what
//! started it. The store writes and reads these as text (`tds_sync_runs.mode`, `.trigger`); code
//! passes them as enums, so a misspelt mode cannot reach a run row.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a sync lists a kind: every record, or what changed since the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Every record, whatever the cursor says.
    Full,
    /// What changed since the cursor (everything when there is none yet).
    Incremental,
}

impl SyncMode {
    /// `full` or `incremental`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Incremental => "incremental",
        }
    }
}

/// What a stock poll covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockMode {
    /// Items changed since the stock cursor (all items when there is none yet).
    Incremental,
    /// Every item.
    Full,
    /// One warehouse (location).
    Warehouse,
    /// The listed item ids.
    Items,
    /// Items stored below the threshold.
    LowStock,
}

impl StockMode {
    /// Every mode.
    pub const ALL: [StockMode; 5] = [
        StockMode::Incremental,
        StockMode::Full,
        StockMode::Warehouse,
        StockMode::Items,
        StockMode::LowStock,
    ];

    /// The mode's name as written in inputs (`incremental`, `low_stock`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StockMode::Incremental => "incremental",
            StockMode::Full => "full",
            StockMode::Warehouse => "warehouse",
            StockMode::Items => "items",
            StockMode::LowStock => "low_stock",
        }
    }
}

/// The mode of a recorded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunMode {
    /// A full or incremental sync of one kind.
    Sync(SyncMode),
    /// A heal run: re-fetches the ids a comparison found different.
    Heal,
    /// A stock poll (stored as `stock_<mode>`).
    Stock(StockMode),
}

impl RunMode {
    /// The mode as stored and shown: `full`, `incremental`, `heal`, `stock_full`, `stock_low_stock`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Sync(m) => m.as_str(),
            RunMode::Heal => "heal",
            RunMode::Stock(StockMode::Incremental) => "stock_incremental",
            RunMode::Stock(StockMode::Full) => "stock_full",
            RunMode::Stock(StockMode::Warehouse) => "stock_warehouse",
            RunMode::Stock(StockMode::Items) => "stock_items",
            RunMode::Stock(StockMode::LowStock) => "stock_low_stock",
        }
    }
}

impl From<SyncMode> for RunMode {
    fn from(m: SyncMode) -> Self {
        RunMode::Sync(m)
    }
}

impl fmt::Display for RunMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RunMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl RunMode {
    /// Every mode a run can have.
    pub fn all() -> impl Iterator<Item = RunMode> {
        [
            RunMode::Sync(SyncMode::Full),
            RunMode::Sync(SyncMode::Incremental),
            RunMode::Heal,
        ]
        .into_iter()
        .chain(StockMode::ALL.into_iter().map(RunMode::Stock))
    }
}

/// In the admin API's OpenAPI document: one of the stored names.
impl utoipa::PartialSchema for RunMode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(RunMode::all().map(RunMode::as_str)))
            .description(Some(
                "How a run lists: a sync's mode, a heal, or a stock poll's mode.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for RunMode {}

/// A text that names no run mode, or no trigger; its message lists the valid names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; valid: {valid}")]
pub struct UnknownName {
    /// `run mode` or `trigger`.
    pub what: &'static str,
    /// What was given.
    pub given: String,
    /// The valid names.
    pub valid: String,
}

impl FromStr for RunMode {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut valid = Vec::new();
        for mode in RunMode::all() {
            if mode.as_str() == s {
                return Ok(mode);
            }
            valid.push(mode.as_str());
        }
        Err(UnknownName {
            what: "run mode",
            given: s.to_string(),
            valid: valid.join(", "),
        })
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// An EventBridge schedule (or `tds up`'s own scheduler).
    Schedule,
    /// A message sent by hand (`events/sync/*.json`, the CLI's raw inputs).
    Manual,
    /// `POST /api/tds/sync` (the admin API, the `tds` CLI, the dashboard).
    AdminApi,
    /// `tds up`'s first load of the local stack.
    TdsUp,
    /// A comparison healing what it found different.
    Heal,
    /// Chained to a run that completed (the image run after an item run).
    AfterRun,
    /// A test.
    Test,
}

impl Trigger {
    const ALL: [Trigger; 7] = [
        Trigger::Schedule,
        Trigger::Manual,
        Trigger::AdminApi,
        Trigger::TdsUp,
        Trigger::Heal,
        Trigger::AfterRun,
        Trigger::Test,
    ];

    /// The trigger as stored and shown (`schedule`, `admin-api`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::AdminApi => "admin-api",
            Trigger::TdsUp => "tds-up",
            Trigger::Heal => "heal",
            Trigger::AfterRun => "after-run",
            Trigger::Test => "test",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = UnknownName;

    /// The stored names, and the free texts earlier versions stored (`tds up`, `comparison`,
    /// `after item run N`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(t) = Trigger::ALL.into_iter().find(|t| t.as_str() == s) {
            return Ok(t);
        }
        match s {
            "tds up" => Ok(Trigger::TdsUp),
            "comparison" => Ok(Trigger::Heal),
            _ if s.starts_with("after item run") => Ok(Trigger::AfterRun),
            _ => Err(UnknownName {
                what: "trigger",
                given: s.to_string(),
                valid: Trigger::ALL.map(Trigger::as_str).join(", "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_modes_round_trip_through_their_stored_names() {
        for mode in [
            RunMode::Sync(SyncMode::Full),
            RunMode::Sync(SyncMode::Incremental),
            RunMode::Heal,
        ]
        .into_iter()
        .chain(StockMode::ALL.map(RunMode::Stock))
        {
            assert_eq!(mode.as_str().parse::<RunMode>(), Ok(mode));
        }
        let err = "partial".parse::<RunMode>().unwrap_err().to_string();
        assert!(
            err.contains("\"partial\"") && err.contains("stock_low_stock"),
            "{err}"
        );
    }

    #[test]
    fn triggers_round_trip_and_read_the_texts_of_earlier_versions() {
        for t in Trigger::ALL {
            assert_eq!(t.as_str().parse::<Trigger>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!("tds up".parse::<Trigger>(), Ok(Trigger::TdsUp));
        assert_eq!(
            "after item run 42".parse::<Trigger>(),
            Ok(Trigger::AfterRun)
        );
        assert_eq!("comparison".parse::<Trigger>(), Ok(Trigger::Heal));
        assert!("cron".parse::<Trigger>().is_err());
    }
}
