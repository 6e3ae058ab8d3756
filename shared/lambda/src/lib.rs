//! Feedback Loop's Lambda/HTTP glue and renderers: the cold start (`init`), API Gateway requests
//! into domain input (`http`), domain errors into problem+json (`problem`, the one mapping), metrics (`observe`),
//! a stream batch's partial answer (`stream`),
//! and what people read: the digest's messages (`digest`), the dashboard (`dashboard`), the link
//! pages (`pages`) and the charts (`charts`, feature `charts`).

#[cfg(feature = "charts")]
pub mod charts;
pub mod dashboard;
pub mod digest;
pub mod http;
pub mod init;
pub mod observe;
pub mod pages;
pub mod problem;
pub mod stream;
