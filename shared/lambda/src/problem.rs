//! The one place where domain errors become HTTP answers: `application/problem+json` bodies
//! (RFC 9457: type, title, status, detail) with the right status. Internals never reach the body;
//! 5xx answers carry only a reference the caller can quote and we can find in the logs.

use serde::Serialize;

use feedback::ratings::SubmitRatingError;
use feedback::validate::FieldError;
use feedback::validate::InputError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Per-field problems, for validation failures.
    #[serde(rename = "invalid_params", skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<FieldError>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: u16, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:feedback-loop:problem:{slug}"),
            title,
            status,
            detail: detail.into(),
            invalid_params: Vec::new(),
            retry_after: None,
        }
    }

    pub fn internal(reference: &str) -> Self {
        Problem::new(
            500,
            "internal",
            "Internal error",
            format!("Something went wrong on our side. Reference: {reference}"),
        )
    }

    pub fn unavailable(reference: &str) -> Self {
        let mut p = Problem::new(
            503,
            "unavailable",
            "Temporarily unavailable",
            format!("Please retry shortly; retries are safe. Reference: {reference}"),
        );
        p.retry_after = Some(1);
        p
    }

    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }
}

/// At most this many `invalid_params` in one answer, each field name and detail cut to these
/// lengths: a body of a million unknown keys gets a 422 of a few kilobytes, not a response beyond
/// Lambda's 6 MB.
pub const INVALID_PARAMS_MAX: usize = 20;
const FIELD_NAME_MAX_CHARS: usize = 100;
const DETAIL_MAX_CHARS: usize = 300;

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

impl From<InputError> for Problem {
    fn from(e: InputError) -> Self {
        match e {
            InputError::MalformedJson(why) => {
                Problem::new(400, "malformed-json", "Malformed JSON", format!("The body is not valid JSON: {why}"))
            }
            InputError::NotAnObject => {
                Problem::new(400, "malformed-json", "Malformed JSON", "The body must be a JSON object")
            }
            InputError::TooLarge { limit } => {
                Problem::new(413, "too-large", "Body too large", format!("The body must be at most {limit} bytes"))
            }
            InputError::UnsupportedMediaType(ct) => Problem::new(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                format!("Content-Type {ct:?} is not supported; send application/json"),
            ),
            InputError::BadHeader { header, detail } => {
                Problem::new(400, "bad-header", "Invalid header", format!("Header {header} {detail}"))
            }
            InputError::Invalid(mut errors) => {
                // However many fields a body gets wrong, the answer stays small: the first
                // INVALID_PARAMS_MAX, each cut to a readable length, and how many more there were.
                let more = errors.len().saturating_sub(INVALID_PARAMS_MAX);
                errors.truncate(INVALID_PARAMS_MAX);
                for e in &mut errors {
                    e.field = cut(&e.field, FIELD_NAME_MAX_CHARS);
                    e.detail = cut(&e.detail, DETAIL_MAX_CHARS);
                }
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                let and_more = if more > 0 { format!(" and {more} more") } else { String::new() };
                let mut p = Problem::new(
                    422,
                    "validation-failed",
                    "Validation failed",
                    format!("Invalid field(s): {}{and_more}", fields.join(", ")),
                );
                p.invalid_params = errors;
                p
            }
        }
    }
}

impl Problem {
    /// `reference` identifies the invocation (the Lambda request id) for 5xx answers.
    pub fn from_submit_rating(e: &SubmitRatingError, reference: &str) -> Self {
        match e {
            SubmitRatingError::AlreadyRated { conversation_id, existing_id } => Problem::new(
                409,
                "already-rated",
                "Conversation already rated",
                format!(
                    "Conversation {conversation_id} already has rating {existing_id}; a conversation is rated once"
                ),
            ),
            SubmitRatingError::IdempotencyKeyReused { conversation_id } => Problem::new(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                format!(
                    "This Idempotency-Key was used for a different rating of conversation {conversation_id}; \
                     use a new key for a new request"
                ),
            ),
            SubmitRatingError::Store(s) => Problem::from_store(s, reference),
        }
    }
}

impl Problem {
    /// Storage failures: retryable ones are a 503 with `Retry-After`, the rest a 500.
    pub fn from_store(e: &feedback::errors::StoreError, reference: &str) -> Self {
        if e.is_retryable() { Problem::unavailable(reference) } else { Problem::internal(reference) }
    }

    pub fn from_intake(e: &feedback::conversations::intake::IntakeError, reference: &str) -> Self {
        use feedback::conversations::intake::IntakeError;
        use feedback::errors::NotifyError;
        match e {
            IntakeError::OtherCustomer { conversation_id } => Problem::new(
                409,
                "conversation-of-another-customer",
                "Conversation belongs to another customer",
                format!("Conversation {conversation_id} was recorded for a different customer_id"),
            ),
            IntakeError::Store(s) => Problem::from_store(s, reference),
            IntakeError::Alert(NotifyError::Unavailable(_)) => Problem::unavailable(reference),
            IntakeError::Alert(_) => Problem::internal(reference),
            // Usually the other request is sending it right now: a retry a second later finds it
            // sent; if that request died, retries go on until its claim lapses.
            IntakeError::AlertInProgress => Problem::unavailable(reference),
        }
    }

    /// `POST /conversations/{id}/offer` refused.
    pub fn from_offer_report(
        e: &feedback::customers::offers::ReportError,
        conversation_id: &str,
        reference: &str,
    ) -> Self {
        use feedback::customers::offers::{ReportError, Withheld};
        match e {
            ReportError::NoOffer => Problem::new(
                404,
                "no-offer",
                "No offer for this conversation",
                format!("No reply strategy suggested an offer in conversation {conversation_id}"),
            ),
            ReportError::Withheld(why) => Problem::new(
                409,
                "offer-withheld",
                "No offer was to be made",
                format!(
                    "The strategy withheld the offer of conversation {conversation_id} ({})",
                    match why {
                        Withheld::Holdout => "held-out comparison",
                        Withheld::CustomerCap => "the customer's cap over 90 days",
                        Withheld::WeeklyBudget => "the week's budget",
                    }
                ),
            ),
            ReportError::Contradicts { state } => Problem::new(
                409,
                "offer-contradiction",
                "The report contradicts an earlier one",
                format!("The offer of conversation {conversation_id} was already reported {state:?}"),
            ),
            ReportError::AcceptedNotMade => Problem::new(
                422,
                "invalid-input",
                "accepted needs made",
                "An offer that was not made cannot be accepted or declined: drop `accepted` or set `made`",
            ),
            ReportError::Store(s) => Problem::from_store(s, reference),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedback::errors::StoreError;

    #[test]
    fn a_body_full_of_unknown_fields_gets_a_small_answer() {
        // 1.3 MB of messages, each with unknown fields, one of them with a 100 KB name.
        let mut body = String::from("{\"customer_id\": \"u-1\", \"messages\": [");
        for m in 0..50 {
            let unknown: String = (0..400).map(|i| format!(", \"unknown_{i}_{}\": 1", "x".repeat(40))).collect();
            let sep = if m == 0 { "" } else { "," };
            body.push_str(&format!(
                "{sep}{{\"message_id\": \"m-{m}\", \"role\": \"customer\", \"text\": \"hi\"{unknown}}}"
            ));
        }
        body.push_str(&format!("], \"{}\": 1}}", "k".repeat(100_000)));
        assert!(body.len() > 1_000_000 && body.len() < feedback::conversations::MESSAGES_BODY_MAX_BYTES);
        let now = "2026-11-18T03:00:00Z".parse().unwrap();
        let err = feedback::conversations::MessageBatch::from_json("c-1".into(), body.as_bytes(), now).unwrap_err();
        let json = serde_json::to_string(&Problem::from(err)).unwrap();
        assert!(json.len() < 16 * 1024, "{} bytes for a {} byte body", json.len(), body.len());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["invalid_params"].as_array().unwrap().len(), INVALID_PARAMS_MAX);
        assert!(v["detail"].as_str().unwrap().contains(" more"), "{}", v["detail"]);
    }

    #[test]
    fn storage_details_never_reach_the_caller() {
        let e = SubmitRatingError::Store(StoreError::Failed("AccessDenied on arn:aws:dynamodb:secret".into()));
        let p = Problem::from_submit_rating(&e, "req-1");
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("arn") && p.detail.contains("req-1"));
        let e = SubmitRatingError::Store(StoreError::Unavailable("throttled".into()));
        let p = Problem::from_submit_rating(&e, "req-2");
        assert_eq!((p.status, p.retry_after), (503, Some(1)));
    }

    #[test]
    fn validation_failures_list_the_fields() {
        let p = Problem::from(InputError::Invalid(vec![FieldError::new("stars", "range", "must be 1-5")]));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["status"], 422);
        assert_eq!(json["invalid_params"][0]["field"], "stars");
        assert_eq!(json["invalid_params"][0]["rule"], "range");
        assert_eq!(json["type"], "urn:feedback-loop:problem:validation-failed");
    }
}
