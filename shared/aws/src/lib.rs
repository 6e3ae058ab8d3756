//! Feedback Loop's AWS adapters: the domain's ports implemented on DynamoDB (`dynamo`: every table
//! key is built there; also reading stream records), SES v2 and SNS (`notify`), and the SDK's
//! configuration (`sdk`: rustls with ring, timeouts, the local endpoint).

pub mod dynamo;
pub mod notify;
pub mod sdk;
