//! The notification adapters: staff alerts on the SNS staff topic, and follow-up requests by SES v2
//! e-mail or SNS SMS.

use aws_sdk_sns::Client;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;

use feedback::conversations::store::StaffAlert;
use feedback::conversations::store::StaffAlerts;
use feedback::errors::NotifyError;

pub use aws_sdk_sns::Client as SnsClient;

/// `StaffAlerts` on an SNS topic. Each alert carries `severity`, `category` and
/// `conversation_id` as message attributes, so subscribers can filter (e.g. SMS for high only).
#[derive(Clone)]
pub struct SnsStaffAlerts {
    client: Client,
    topic_arn: String,
    locale: feedback::i18n::Locale,
}

impl SnsStaffAlerts {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self { client, topic_arn: topic_arn.into(), locale: feedback::i18n::Locale::ZhCn }
    }

    /// The language staff read the alerts in (the subject stays ASCII: SNS wants it so).
    pub fn in_locale(mut self, locale: feedback::i18n::Locale) -> Self {
        self.locale = locale;
        self
    }
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("type and value are set")
}

impl StaffAlerts for SnsStaffAlerts {
    async fn send_alert(&self, alert: &StaffAlert) -> Result<String, NotifyError> {
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(alert.subject())
            .message(alert.body(self.locale.catalogue()))
            .message_attributes("severity", attribute(alert.severity.as_str()))
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
    match crate::sdk::classify_sdk_error(&err) {
        (true, what) => NotifyError::Unavailable(what),
        (false, what) => NotifyError::Failed(what),
    }
}

/// A raw MIME message through SES v2 (raw, so our own headers such as List-Unsubscribe and the
/// inline images go as built), with the configuration set for bounce and complaint tracking.
async fn send_raw_email(
    ses: &aws_sdk_sesv2::Client,
    from: &str,
    to: Vec<String>,
    raw_mime: &[u8],
    configuration_set: &Option<String>,
) -> Result<String, NotifyError> {
    use aws_sdk_sesv2::primitives::Blob;
    use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
    let raw =
        RawMessage::builder().data(Blob::new(raw_mime)).build().map_err(|e| NotifyError::Failed(e.to_string()))?;
    let out = ses
        .send_email()
        .from_email_address(from)
        .destination(Destination::builder().set_to_addresses(Some(to)).build())
        .content(EmailContent::builder().raw(raw).build())
        .set_configuration_set_name(configuration_set.clone())
        .send()
        .await
        .map_err(notify_error)?;
    Ok(out.message_id.unwrap_or_default())
}

/// Follow-up requests: e-mail through SES v2 (raw MIME, so the unsubscribe headers are sent; with
/// the configuration set for bounce and complaint tracking) and SMS through SNS (Transactional).
#[derive(Clone)]
pub struct AwsFollowUpSender {
    pub ses: aws_sdk_sesv2::Client,
    pub sns: Client,
    pub from_address: String,
    pub configuration_set: Option<String>,
}

impl feedback::followups::FollowUpSender for AwsFollowUpSender {
    async fn send_email(&self, to: &str, raw_mime: &str) -> Result<String, NotifyError> {
        send_raw_email(&self.ses, &self.from_address, vec![to.to_owned()], raw_mime.as_bytes(), &self.configuration_set)
            .await
    }

    async fn send_sms(&self, phone: &str, text: &str) -> Result<String, NotifyError> {
        let out = self
            .sns
            .publish()
            .phone_number(phone)
            .message(text)
            .message_attributes("AWS.SNS.SMS.SMSType", attribute("Transactional"))
            .send()
            .await
            .map_err(notify_error)?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn sms_opted_out(&self, phone: &str) -> Result<bool, NotifyError> {
        let out =
            self.sns.check_if_phone_number_is_opted_out().phone_number(phone).send().await.map_err(notify_error)?;
        Ok(out.is_opted_out)
    }
}

/// The weekly digest: raw MIME through SES v2 to the staff list, a short message on the staff topic.
#[derive(Clone)]
pub struct AwsDigestSender {
    pub ses: aws_sdk_sesv2::Client,
    pub sns: Client,
    pub from_address: String,
    pub topic_arn: String,
    pub configuration_set: Option<String>,
}

impl feedback::reporting::DigestSender for AwsDigestSender {
    async fn send_email(&self, recipients: &[String], raw_mime: &[u8]) -> Result<String, NotifyError> {
        send_raw_email(&self.ses, &self.from_address, recipients.to_vec(), raw_mime, &self.configuration_set).await
    }

    async fn publish(&self, subject: &str, message: &str) -> Result<String, NotifyError> {
        // SNS subjects: ASCII-printable, at most 100 characters.
        let subject: String = subject.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(100).collect();
        let out = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject.trim())
            .message(message)
            .message_attributes("kind", attribute("weekly_digest"))
            .send()
            .await
            .map_err(notify_error)?;
        Ok(out.message_id.unwrap_or_default())
    }
}
