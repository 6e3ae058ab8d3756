//! Feedback Loop's domain: what a rating, a conversation and a customer are, the rules that apply
//! to them, and the ports (traits) through which the rules reach storage and notification.
//!
//! The AWS adapters live beside the ports (`dynamo`, `aws`) behind the `aws` feature; the helpers
//! that turn API Gateway requests into domain values and domain errors into HTTP responses live in
//! `http` behind the `lambda` feature. Everything else here is pure and tested without I/O.

pub mod analysis;
pub mod auth;
#[cfg(feature = "charts")]
pub mod charts;
pub mod config;
pub mod conversation;
pub mod customer;
pub mod dashboard;
pub mod digest;
pub mod followup;
pub mod insights;
pub mod intake;
pub mod link;
pub mod observe;
pub mod pii;
pub mod ports;
pub mod problem;
pub mod rating;
pub mod taxonomy;
pub mod triggers;
pub mod validate;
pub mod weekly;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod dynamo;
#[cfg(feature = "lambda")]
pub mod http;
#[cfg(feature = "aws")]
pub mod notify;

pub use jiff::Timestamp;
