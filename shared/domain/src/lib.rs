//! Feedback Loop's domain: what a rating, a conversation and a customer are, the rules that apply
//! to them, the ports (traits) through which the rules reach storage and notification, and the use
//! cases, grouped by capability. No AWS and no HTTP in here (the `feedback-aws` adapters and the
//! `feedback-lambda` glue sit above this crate); everything is tested without I/O.
//!
//! From the bottom up:
//! - the vocabulary: `validate` (fields, input errors), `language`, `errors` (store and notify
//!   failures), `lease` (claims on work done once), `pii`, `auth` (caller keys), `config` (settings);
//! - `analysis`: reading text (keyword `triggers`, the issue `taxonomy`, cleaning, sentiment, issue
//!   types, chat turns, conversation satisfaction);
//! - `conversations` (messages, intake and triggers, closing), `ratings`, `followups` (policy, rating
//!   links, contact details), `customers` (profiles from order events, the reply strategy);
//! - `insights`: stored feedback analysed and counted once, and the `weekly` aggregates and report;
//! - `reporting`: the Monday digest and the dashboard's figures.

pub mod auth;
pub mod config;
pub mod errors;
pub mod i18n;
pub mod ids;
pub mod language;
pub mod lease;
pub mod pii;
pub mod time;
pub mod validate;

pub mod analysis;

pub mod conversations;
pub mod customers;
pub mod experiments;
pub mod followups;
pub mod ratings;

pub mod insights;
pub mod reporting;

pub use jiff::Timestamp;
