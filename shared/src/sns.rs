//! The SNS adapter: staff alerts published to the staff topic.

use aws_sdk_sns::Client;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;

use crate::intake::StaffAlert;
use crate::ports::{NotifyError, StaffAlerts};

pub use aws_sdk_sns::Client as SnsClient;

/// `StaffAlerts` on an SNS topic. Each alert carries `severity`, `category` and
/// `conversation_id` as message attributes, so subscribers can filter (e.g. SMS for high only).
#[derive(Clone)]
pub struct SnsStaffAlerts {
    client: Client,
    topic_arn: String,
}

impl SnsStaffAlerts {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self { client, topic_arn: topic_arn.into() }
    }
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("type and value are set")
}

impl StaffAlerts for SnsStaffAlerts {
    async fn send_alert(&self, alert: &StaffAlert) -> Result<String, NotifyError> {
        let severity = serde_json::to_value(alert.severity).ok().and_then(|v| v.as_str().map(str::to_owned));
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(alert.subject())
            .message(alert.body())
            .message_attributes("severity", attribute(severity.as_deref().unwrap_or("high")))
            .message_attributes("category", attribute(&alert.category))
            .message_attributes("conversation_id", attribute(&alert.conversation_id))
            .send()
            .await
            .map_err(notify_error)?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// Throttling, 5xx and transport failures are worth retrying; everything else is not.
pub(crate) fn notify_error<E, R>(err: SdkError<E, R>) -> NotifyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match crate::aws::classify_sdk_error(&err) {
        (true, what) => NotifyError::Unavailable(what),
        (false, what) => NotifyError::Failed(what),
    }
}
