//! What SES reports about follow-up e-mails after sending (the stack's configuration set publishes
//! bounces and complaints to an SNS topic): a permanent bounce or a complaint stops e-mail
//! follow-ups to that address. SES's own suppression list already drops the mail; ours keeps the
//! follow-up from spending the customer's fatigue budget on it and lets SMS (where consented) take
//! over.

use serde_json::Value;

use crate::Timestamp;
use crate::errors::StoreError;
use crate::followups::contacts::ContactStore;

/// One SES event, as far as follow-ups care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailEvent {
    /// These addresses must not get follow-up e-mail again.
    Suppress { addresses: Vec<String>, reason: &'static str },
    /// Nothing to do (a transient bounce, a delivery, a complaint marked not-spam...).
    Ignore { why: String },
}

/// Reads an SES event (configuration-set event publishing: `eventType`; identity notifications:
/// `notificationType`). Anything unreadable is an `Err` naming why.
pub fn read_ses_event(message: &str) -> Result<MailEvent, String> {
    let v: Value = serde_json::from_str(message).map_err(|e| format!("not JSON: {e}"))?;
    let kind = v["eventType"].as_str().or_else(|| v["notificationType"].as_str()).ok_or("no eventType")?;
    let addresses = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["emailAddress"].as_str())
            .map(|a| a.trim().to_owned())
            .filter(|a| a.contains('@'))
            .collect()
    };
    let event = match kind {
        "Bounce" => {
            let bounce = &v["bounce"];
            match bounce["bounceType"].as_str() {
                Some("Permanent") => {
                    MailEvent::Suppress { addresses: addresses(&bounce["bouncedRecipients"]), reason: "bounce" }
                }
                other => MailEvent::Ignore { why: format!("{} bounce", other.unwrap_or("unknown")) },
            }
        }
        "Complaint" => {
            let complaint = &v["complaint"];
            if complaint["complaintFeedbackType"].as_str() == Some("not-spam") {
                MailEvent::Ignore { why: "complaint marked not-spam".into() }
            } else {
                MailEvent::Suppress { addresses: addresses(&complaint["complainedRecipients"]), reason: "complaint" }
            }
        }
        other => MailEvent::Ignore { why: format!("{other} event") },
    };
    match event {
        MailEvent::Suppress { addresses, .. } if addresses.is_empty() => Err(format!("{kind} names no recipient")),
        event => Ok(event),
    }
}

/// What recording one SES event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Suppressed {
        count: usize,
        reason: &'static str,
    },
    Ignored(String),
    /// Not an SES event we can read: logged, not retried (a retry reads it no better).
    Unreadable(String),
}

/// Records one SES event; storing is idempotent, so a redelivered event changes nothing.
pub async fn record_mail_event(
    store: &impl ContactStore,
    message: &str,
    now: Timestamp,
) -> Result<Recorded, StoreError> {
    match read_ses_event(message) {
        Err(why) => Ok(Recorded::Unreadable(why)),
        Ok(MailEvent::Ignore { why }) => Ok(Recorded::Ignored(why)),
        Ok(MailEvent::Suppress { addresses, reason }) => {
            for address in &addresses {
                store.suppress_email(address, reason, now).await?;
            }
            Ok(Recorded::Suppressed { count: addresses.len(), reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, body: Value) -> String {
        let mut v = serde_json::json!({"eventType": kind, "mail": {"destination": ["a@example.com"]}});
        v[kind.to_lowercase()] = body;
        v.to_string()
    }

    #[test]
    fn permanent_bounces_and_complaints_suppress_their_recipients_and_nothing_else_does() {
        let hard = event(
            "Bounce",
            serde_json::json!({"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": " a@example.com "}]}),
        );
        assert_eq!(
            read_ses_event(&hard),
            Ok(MailEvent::Suppress { addresses: vec!["a@example.com".into()], reason: "bounce" })
        );
        let complaint = event(
            "Complaint",
            serde_json::json!({"complainedRecipients": [{"emailAddress": "b@example.com"}], "complaintFeedbackType": "abuse"}),
        );
        assert_eq!(
            read_ses_event(&complaint),
            Ok(MailEvent::Suppress { addresses: vec!["b@example.com".into()], reason: "complaint" })
        );
        // The identity-notification form says notificationType.
        let notification = hard.replace("eventType", "notificationType");
        assert!(matches!(read_ses_event(&notification), Ok(MailEvent::Suppress { .. })));

        let soft = event(
            "Bounce",
            serde_json::json!({"bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "a@example.com"}]}),
        );
        assert!(matches!(read_ses_event(&soft), Ok(MailEvent::Ignore { .. })));
        let not_spam = event(
            "Complaint",
            serde_json::json!({"complainedRecipients": [{"emailAddress": "b@example.com"}], "complaintFeedbackType": "not-spam"}),
        );
        assert!(matches!(read_ses_event(&not_spam), Ok(MailEvent::Ignore { .. })));
        assert!(matches!(read_ses_event(&event("Delivery", Value::Null)), Ok(MailEvent::Ignore { .. })));
        for broken in ["", "{}", "[1]", &event("Bounce", serde_json::json!({"bounceType": "Permanent"}))] {
            assert!(read_ses_event(broken).is_err(), "{broken}");
        }
    }
}
