//! The local emulator (`make run`, `feedback-local`): moto for DynamoDB, SES and SNS, and our own
//! stand-ins for what moto does not play, all derived from template.yaml: the Lambda Runtime API
//! (`lambda_host`: each function's real binary runs against it), API Gateway's HTTP API
//! (`gateway`: routes and authorizers, real payload-v2 events), table creation (`tables`), the
//! DynamoDB stream event source mapping (`streams`) and the whole system (`runner`).

pub mod gateway;
pub mod lambda_host;
pub mod moto;
pub mod runner;
pub mod streams;
pub mod tables;
