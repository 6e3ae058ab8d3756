//! Building AWS SDK configuration once per cold start, from the environment alone
//! (`AWS_ENDPOINT_URL` points every client at moto locally; nothing in code knows about it).

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// SDK configuration with a rustls/ring HTTPS client and timeouts that fit a 10 s Lambda: a stuck
/// connection fails fast and is retried by the SDK instead of eating the whole invocation.
pub async fn sdk_config() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(1_500))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build();
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client()).timeout_config(timeouts).load().await
}

/// The SDK's hyper/rustls client with the `ring` provider (the default pulls in aws-lc).
fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn ses_client(config: &SdkConfig) -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(config)
}

pub fn sns_client(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

/// Configuration for local tooling (runner, tests) talking to moto with dummy credentials.
/// Lambda code never uses this: there the environment alone decides.
pub async fn local_sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

/// Whether an SDK error is worth retrying (throttling, 5xx, timeouts, transport), and a
/// description for the logs. Every adapter maps its errors through this one rule.
pub(crate) fn classify_sdk_error<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> (bool, String)
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    use aws_sdk_dynamodb::error::SdkError;
    let code = err.code().unwrap_or("").to_owned();
    let retryable =
        matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
            || code.contains("Throttl")
            || matches!(
                code.as_str(),
                "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "KMSThrottling"
            );
    (retryable, format!("{code}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(err)))
}
