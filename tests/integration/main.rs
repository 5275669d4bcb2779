//! TDS integration tests: one binary, one module per area, each test on its own fresh PostgreSQL
//! database (`#[sqlx::test]` creates and drops it; `DATABASE_URL` points at the server).
#![allow(clippy::unwrap_used)]

mod admin_api;
mod aws_adapters;
mod comparison;
mod end_to_end;
mod entity_processor;
mod harness;
mod metrics;
mod migrations;
mod profiles;
mod scheduled_sync;
mod store;
mod webhook_ingest;
mod webhooks;
mod zoho_client;
