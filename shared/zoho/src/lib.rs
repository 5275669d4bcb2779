//! TDS's Zoho client.
//!
//! Owns how TDS talks to Zoho Books v3 and Inventory v1: where each organisation lives ([`config`]),
//! its credentials ([`secret`], behind a secret-store port), one shared access token per credential
//! ([`token`]), one shared API budget per organisation ([`budget`]), and the request loop with Zoho's
//! error model, pagination and bulk details ([`client`]). Token and budget state live in PostgreSQL so
//! every process shares them. It knows nothing about AWS.

pub mod budget;
pub mod client;
pub mod config;
mod error;
pub mod secret;
pub mod token;

pub use budget::{BudgetSettings, Priority, RateBudget};
pub use client::{endpoint, ClientSettings, Page, Pages, RetryPolicy, ZohoClient};
pub use config::{DataCentre, OrgConfig, Product};
pub use error::{code_class, CodeClass, ZohoError};
pub use secret::{CredentialSource, Credentials, SecretDirectory, SecretString, StaticCredentials};
pub use token::{TokenManager, TokenSettings};
