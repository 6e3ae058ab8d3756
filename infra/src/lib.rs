//! Local stand-ins for the parts of AWS that moto does not play, all derived from template.yaml:
//! the Lambda Runtime API (each function's real binary runs against it), API Gateway's HTTP API
//! (routes and authorizer from the template, real payload-v2 events), table creation, and the
//! DynamoDB stream event source mapping.

pub mod demo;
pub mod evaluation;
pub mod gateway;
pub mod http;
pub mod lambda_host;
pub mod moto;
pub mod runner;
pub mod streams;
pub mod tables;
pub mod template;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The API key the local runner accepts (as `Authorization: Bearer dev-local-key`). Never valid in
/// AWS: the deployed stack only knows the digests given in its `CallerKeys` parameter.
pub const DEV_CALLER_KEY: &str = "dev-local-key";

/// The staff token the local runner's stand-in for the JWT authorizer accepts (dashboard data:
/// `Authorization: Bearer local-staff-token`; the page signs in with `/dashboard#token=...`).
/// Override with `STAFF_DEV_TOKEN`. Never valid in AWS, where API Gateway checks real JWTs.
pub const STAFF_DEV_TOKEN: &str = "local-staff-token";

/// Who gets the weekly digest locally (moto records it; nothing leaves the machine).
pub const LOCAL_DIGEST_RECIPIENTS: &str = "staff@shop.example.com";
