//! The versioned row: what a store writes for one entity, and the version rule that decides
//! whether it replaces what is already there.
//!
//! Every row carries a *version time* (Zoho's `last_modified_time`, or for kinds Zoho does not timestamp,
//! the time TDS observed the record), a SHA-256 content hash of the canonical record, and a *completeness*
//! (how many top-level fields the record has: a detail GET is richer than a list page or a webhook).
//! [`VersionedRow::supersedes`] is the rule, the store applies the same rule in SQL:
//!
//! * same content hash → nothing changes (applying a change twice is a no-op);
//! * otherwise the row with the greater `(version, completeness, hash)` wins. Versions decide; at equal
//!   versions the richer record wins; the hash only breaks exact ties, so every order of delivery ends
//!   in the same state;
//! * a tombstoned row is replaced only by a version strictly newer than its deletion time.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::EntityKind;

/// Receives an entity's typed columns, in the order the entity writes them.
///
/// Implemented by stores; the domain names the columns and their types, the store maps them to SQL.
pub trait ColumnSink {
    /// A `text` column.
    fn text(&mut self, name: &'static str, value: Option<&str>);
    /// A `numeric` column.
    fn decimal(&mut self, name: &'static str, value: Option<Decimal>);
    /// A `bigint` column.
    fn integer(&mut self, name: &'static str, value: Option<i64>);
    /// A `boolean` column.
    fn boolean(&mut self, name: &'static str, value: Option<bool>);
    /// A `timestamptz` column.
    fn timestamp(&mut self, name: &'static str, value: Option<DateTime<Utc>>);
    /// A `date` column.
    fn date(&mut self, name: &'static str, value: Option<NaiveDate>);
}

/// A parsed Zoho record (or a record TDS derives from one) that has a table of its own.
pub trait Entity {
    /// Which kind of entity this is.
    fn kind(&self) -> EntityKind;
    /// The row's id within its organisation: Zoho's id, or a composite for derived kinds.
    fn zoho_id(&self) -> String;
    /// Zoho's `last_modified_time`, where the record has one.
    fn last_modified_time(&self) -> Option<DateTime<Utc>>;
    /// The full record as stored in the `record` jsonb column.
    fn record(&self) -> &Value;
    /// Writes the kind's typed columns (everything but the common ones) to `sink`.
    fn write_columns(&self, sink: &mut dyn ColumnSink);
}

/// An entity ready to be written: the common columns every entity table has, plus the entity itself.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedRow<E> {
    /// Zoho organisation id.
    pub org_id: String,
    /// Row id within the organisation (see [`Entity::zoho_id`]).
    pub zoho_id: String,
    /// Version time: `last_modified_time` where Zoho gives one, otherwise when TDS observed the record.
    pub version: DateTime<Utc>,
    /// SHA-256 of the canonical (key-sorted, compact) JSON of the record.
    pub content_hash: [u8; 32],
    /// That canonical JSON: serialized once, for the hash and for the database.
    pub record_json: String,
    /// Number of non-null top-level fields of the record; richer wins over poorer at equal versions.
    pub completeness: i32,
    /// The entity.
    pub entity: E,
}

impl<E: Entity> VersionedRow<E> {
    /// Versions `entity` for organisation `org_id`; `observed_at` is when it was read from Zoho
    /// (or received by webhook) and is the version of records without `last_modified_time`.
    pub fn new(org_id: impl Into<String>, entity: E, observed_at: DateTime<Utc>) -> Self {
        let version = entity.last_modified_time().unwrap_or(observed_at);
        let record = entity.record();
        let completeness = match record {
            Value::Object(map) => map.values().filter(|v| !v.is_null()).count(),
            _ => 0,
        };
        let record_json = canonical_json(record);
        VersionedRow {
            org_id: org_id.into(),
            zoho_id: entity.zoho_id(),
            version,
            content_hash: Sha256::digest(record_json.as_bytes()).into(),
            record_json,
            completeness: i32::try_from(completeness).unwrap_or(i32::MAX),
            entity,
        }
    }

    /// Orders two versions of the same row by the version rule (see the module docs).
    pub fn version_cmp(&self, other: &Self) -> Ordering {
        (self.version, self.completeness, self.content_hash).cmp(&(
            other.version,
            other.completeness,
            other.content_hash,
        ))
    }

    /// Whether this row would replace `current` (which is not tombstoned) under the version rule.
    pub fn supersedes(&self, current: &Self) -> bool {
        self.content_hash != current.content_hash && self.version_cmp(current) == Ordering::Greater
    }
}

/// The canonical JSON of `record`: object keys sorted (serde_json's default map is ordered), no
/// insignificant whitespace.
pub fn canonical_json(record: &Value) -> String {
    // A `Value` always serializes (its keys are strings).
    serde_json::to_string(record).unwrap_or_default()
}

/// SHA-256 of the canonical JSON of `record`: object keys sorted (serde_json's default map is ordered),
/// no insignificant whitespace. Two records with the same content hash are the same record.
pub fn content_hash(record: &Value) -> [u8; 32] {
    // serde_json writes compact JSON with keys in map order, which is sorted without the
    // `preserve_order` feature (checked by a test below); streamed into the hash, not into a string.
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    // A `Value` written to a sink that never fails cannot fail.
    let written = serde_json::to_writer(&mut hashing, record);
    debug_assert!(written.is_ok(), "a JSON value serializes");
    hashing.0.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_hash_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":3,"y":2},"b":1}"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&json!({"a": 1})));
        let canonical: [u8; 32] = Sha256::digest(br#"{"a":{"x":3,"y":2},"b":1}"#).into();
        assert_eq!(
            content_hash(&a),
            canonical,
            "the hash of the compact, sorted text"
        );
        assert_eq!(a.to_string(), r#"{"a":{"x":3,"y":2},"b":1}"#);
    }

    #[test]
    fn a_row_carries_the_canonical_json_its_hash_is_over() {
        let record =
            json!({"location_name": "Main", "location_id": "9", "address": {"z": 1, "a": null}});
        let location = crate::model::Location::parse(record.clone()).unwrap();
        let row = VersionedRow::new("1", location, chrono::Utc::now());
        assert_eq!(
            row.record_json,
            r#"{"address":{"a":null,"z":1},"location_id":"9","location_name":"Main"}"#
        );
        assert_eq!(row.content_hash, content_hash(&record));
        let back: Value = serde_json::from_str(&row.record_json).unwrap();
        assert_eq!(back, record);
    }
}
