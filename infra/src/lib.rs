//! Everything that runs the system outside AWS, each part in its own place:
//! - `local`: the local emulator (`make run`; binary `feedback-local`): moto plus our stand-ins
//!   for the Lambda Runtime API, API Gateway, tables and the stream;
//! - `demo`: the demo seeder (`make demo`): weeks of generated feedback through the real API;
//! - `cli`: the offline `feedback` command (`src/bin/feedback.rs`): analyse, estimate, train, eval;
//! - the cold-start bench is `src/bin/lambda-bench.rs` (`make bench`);
//! - `template`: template.yaml read once, for all of them and the tests; `http`: a small client.

pub mod cli;
pub mod demo;
pub mod http;
pub mod local;
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
