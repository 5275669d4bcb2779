//! TDS core: the domain model every function shares.
//!
//! Owns the Zoho entity kinds TDS syncs ([`EntityKind`]), lenient parsing of Zoho records into typed
//! entities ([`model`], built on the field readers in [`fields`]), and the versioned row a store writes
//! ([`row`]), Zoho webhook authentication and normalisation ([`webhook`]) and ingest ([`ingest`]),
//! the ports core logic uses for queue, events, secrets and blobs ([`ports`]), and TDS's own metrics
//! with their Embedded Metric Format rendering ([`metrics`]). It must not touch AWS,
//! the network or SQL: adapters live in other crates and depend on this one.

pub mod fields;
pub mod ingest;
pub mod kind;
pub mod metrics;
pub mod model;
pub mod ports;
pub mod row;
pub mod run;
pub mod webhook;

pub use fields::ParseError;
pub use kind::{EntityKind, UnknownEntityKind};
pub use model::{
    parse_entity, AnyEntity, Contact, Document, Item, ItemImage, ItemStock, Location,
    LocationStock, PriceBook, PriceBookRate, StockShape,
};
pub use row::{ColumnSink, Entity, VersionedRow};
pub use run::{RunMode, StockMode, SyncMode, Trigger};
