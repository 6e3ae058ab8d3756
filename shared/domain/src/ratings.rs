//! A customer's rating of a conversation: how a submission is read and checked, and the rule that
//! a conversation is rated once, with retries recognised rather than stored twice.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Timestamp;
use crate::conversations::{Channel, ServedBy};
use crate::errors::StoreError;
use crate::validate::{COMMENT_MAX_CHARS, Fields, InputError, check_locale, check_text};

use std::future::Future;

pub trait RatingStore {
    /// Stores `rating` if its conversation has no rating yet (`Ok(None)`); otherwise writes nothing
    /// and returns the rating already stored (`Ok(Some(existing))`).
    fn insert_rating(&self, rating: &Rating) -> impl Future<Output = Result<Option<Rating>, StoreError>> + Send;

    fn rating_of_conversation(
        &self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<Rating>, StoreError>> + Send;
}

/// Anything bigger than this is not a rating; rejected before parsing.
pub const BODY_MAX_BYTES: usize = 16 * 1024;
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// The fields of `POST /ratings`.
pub const FIELDS: &[&str] = &[
    "conversation_id",
    "customer_id",
    "stars",
    "comment",
    "channel",
    "served_by",
    "locale",
    "issue_types",
    "order_value",
];
/// Largest order value accepted (in the shop's currency).
pub const ORDER_VALUE_MAX: i64 = 10_000_000;

/// A validated rating as the customer submitted it, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RatingSubmission {
    pub conversation_id: crate::ids::ConversationId,
    pub customer_id: crate::ids::CustomerId,
    pub stars: u8,
    pub comment: Option<String>,
    pub channel: Channel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_by: Option<ServedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// What the customer said it was about (ids of `rules/issue_types.toml`), from the feedback form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issue_types: Vec<String>,
    /// The value of the order the conversation was about, in minor units (fen); sent as
    /// `order_value` in the shop's currency. Lets the weekly priorities weigh reach by money.
    #[serde(rename = "order_value", skip_serializing_if = "Option::is_none", serialize_with = "as_major_units")]
    pub order_value_minor: Option<i64>,
    /// Given through a follow-up request's signed link (set by the link page, never by the API):
    /// an answer in the follow-up funnel.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub via_follow_up: bool,
}

fn as_major_units<S: serde::Serializer>(minor: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match minor {
        Some(m) => s.serialize_f64(*m as f64 / 100.0),
        None => s.serialize_none(),
    }
}

impl RatingSubmission {
    /// Reads a `POST /ratings` body. Unknown fields are rejected (a typo such as `star` must not
    /// silently drop the customer's score); every problem is reported at once.
    pub fn from_json(body: &[u8]) -> Result<Self, InputError> {
        let object = crate::validate::json_object(body, BODY_MAX_BYTES)?;
        let mut f = Fields::new(&object, "", FIELDS);
        let conversation_id = f.id("conversation_id", true);
        let customer_id = f.id("customer_id", true);
        let stars = f.integer_in("stars", 1, 5);
        let comment = match f.string("comment", false) {
            Some(raw) => f.keep(check_text("comment", raw, COMMENT_MAX_CHARS)).flatten(),
            None => None,
        };
        let channel = f.one_of("channel", true, &Channel::ALL);
        let served_by = f.object("served_by").and_then(|o| ServedBy::parse(&mut f, "served_by", o));
        let locale = f.string("locale", false).and_then(|raw| f.keep(check_locale("locale", raw)));
        let issue_types = issue_types(&mut f, &object);
        let order_value_minor = f.amount("order_value", ORDER_VALUE_MAX);
        match (conversation_id, customer_id, stars, channel) {
            (Some(conversation_id), Some(customer_id), Some(stars), Some(channel)) if f.errors.is_empty() => {
                Ok(RatingSubmission {
                    conversation_id: conversation_id.into(),
                    customer_id: customer_id.into(),
                    stars: stars as u8,
                    comment,
                    channel,
                    served_by,
                    locale,
                    issue_types,
                    order_value_minor,
                    via_follow_up: false,
                })
            }
            _ => Err(InputError::Invalid(f.errors)),
        }
    }

    /// A digest of what was submitted (after cleaning), used to recognise a retry of the same
    /// rating. Field order is fixed by the struct, so the digest is stable.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a submission always serialises");
        hex::encode(Sha256::digest(&canonical))
    }
}

/// `issue_types`: ids from the taxonomy, each once (repeats are dropped, order kept).
fn issue_types(f: &mut Fields<'_>, object: &serde_json::Map<String, Value>) -> Vec<String> {
    let taxonomy = crate::analysis::taxonomy::Taxonomy::builtin();
    let items = match object.get("issue_types") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            f.fail("issue_types", "type", "must be an array of issue type ids");
            return Vec::new();
        }
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        match item.as_str() {
            Some(id) if taxonomy.contains(id) => {
                if !out.iter().any(|seen| seen == id) {
                    out.push(id.to_owned());
                }
            }
            _ => {
                let ids: Vec<&str> = taxonomy.ids().collect();
                f.fail("issue_types", "one_of", format!("must hold only these ids: {}", ids.join(", ")));
                return Vec::new();
            }
        }
    }
    out
}

/// Checks an `Idempotency-Key` header value: 1–255 visible ASCII characters.
pub fn check_idempotency_key(raw: &[u8]) -> Result<String, InputError> {
    let ok = !raw.is_empty() && raw.len() <= IDEMPOTENCY_KEY_MAX_LEN && raw.iter().all(|b| (0x21..=0x7e).contains(b));
    if ok {
        Ok(String::from_utf8_lossy(raw).into_owned())
    } else {
        Err(InputError::BadHeader {
            header: "Idempotency-Key",
            detail: format!("must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"),
        })
    }
}

/// A stored rating: what was submitted, plus its id and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub id: String,
    pub submission: RatingSubmission,
    pub created_at: Timestamp,
    /// The caller's `Idempotency-Key`, if it sent one. Scoped to the conversation.
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
}

impl Rating {
    pub fn new(
        submission: RatingSubmission,
        id: String,
        created_at: Timestamp,
        idempotency_key: Option<String>,
    ) -> Self {
        let fingerprint = submission.fingerprint();
        Rating { id, submission, created_at, idempotency_key, fingerprint }
    }
}

/// Whether the chatbot should offer the customer a deeper feedback step ("what went wrong?").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeeperFeedback {
    pub offer: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Ratings at or below `max_stars` (default 2) ask what went wrong.
pub fn deeper_feedback(stars: u8, max_stars: u8) -> DeeperFeedback {
    if stars <= max_stars {
        DeeperFeedback { offer: true, reason: Some("low_stars") }
    } else {
        DeeperFeedback { offer: false, reason: None }
    }
}

/// What the storefront gets back: the stored rating and the next step.
#[derive(Debug, Serialize)]
pub struct RatingReceipt<'a> {
    pub id: &'a str,
    #[serde(flatten)]
    pub submission: &'a RatingSubmission,
    pub created_at: Timestamp,
    pub deeper_feedback: DeeperFeedback,
}

impl<'a> RatingReceipt<'a> {
    pub fn new(rating: &'a Rating, max_stars_for_deeper_feedback: u8) -> Self {
        RatingReceipt {
            id: &rating.id,
            submission: &rating.submission,
            created_at: rating.created_at,
            deeper_feedback: deeper_feedback(rating.submission.stars, max_stars_for_deeper_feedback),
        }
    }
}

/// The outcome of a submission that did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// A new rating was stored.
    Created(Rating),
    /// The same rating was submitted before (a retry); this is the original, nothing was written.
    Replayed(Rating),
}

impl Submitted {
    pub fn rating(&self) -> &Rating {
        match self {
            Submitted::Created(r) | Submitted::Replayed(r) => r,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitRatingError {
    #[error("conversation {conversation_id} already has a different rating")]
    AlreadyRated { conversation_id: String, existing_id: String },
    #[error("the Idempotency-Key was already used for a different rating of conversation {conversation_id}")]
    IdempotencyKeyReused { conversation_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a rating unless the conversation is already rated.
///
/// A second submission for a rated conversation is a retry (the original is returned, nothing is
/// written) when it carries the same `Idempotency-Key`, or, without a key, the same content.
/// Otherwise it is a conflict. The store's conditional write makes this hold under concurrency:
/// of two racing identical requests exactly one writes, the other finds it and replays it.
pub async fn submit_rating(
    store: &impl RatingStore,
    submission: RatingSubmission,
    idempotency_key: Option<String>,
    now: Timestamp,
) -> Result<Submitted, SubmitRatingError> {
    // Stored timestamps have millisecond precision; use that from the start so the first answer and
    // a replayed one are identical.
    let now = Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
    let rating = Rating::new(submission, new_rating_id(now), now, idempotency_key);
    let Some(existing) = store.insert_rating(&rating).await? else {
        return Ok(Submitted::Created(rating));
    };
    match (&rating.idempotency_key, &existing.idempotency_key) {
        (Some(key), Some(original)) if key == original => {
            if existing.fingerprint == rating.fingerprint {
                Ok(Submitted::Replayed(existing))
            } else {
                Err(SubmitRatingError::IdempotencyKeyReused {
                    conversation_id: existing.submission.conversation_id.into(),
                })
            }
        }
        _ if existing.fingerprint == rating.fingerprint => Ok(Submitted::Replayed(existing)),
        _ => Err(SubmitRatingError::AlreadyRated {
            existing_id: existing.id,
            conversation_id: existing.submission.conversation_id.into(),
        }),
    }
}

/// Rating ids are ULIDs: unique without coordination and sortable by creation time.
pub fn new_rating_id(now: Timestamp) -> String {
    let ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
    ulid::Ulid::from_datetime(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn valid() -> serde_json::Value {
        json!({"conversation_id": "c-1", "customer_id": "u-1", "stars": 4, "channel": "web"})
    }

    fn field_errors(v: serde_json::Value) -> Vec<(String, &'static str)> {
        match RatingSubmission::from_json(&body(v)) {
            Err(InputError::Invalid(errs)) => errs.into_iter().map(|e| (e.field, e.rule)).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_rating_is_accepted() {
        let s = RatingSubmission::from_json(&body(valid())).unwrap();
        assert_eq!((s.stars, s.channel, s.comment, s.served_by), (4, Channel::Web, None, None));
    }

    #[test]
    fn a_full_rating_is_cleaned_and_canonicalised() {
        let s = RatingSubmission::from_json(&body(json!({
            "conversation_id": "c-1", "customer_id": "u-1", "stars": 1, "channel": "wechat",
            "comment": "  物流太慢了\u{0000}  ", "locale": "zh-cn",
            "served_by": {"kind": "bot", "bot_intent": "track_order"}
        })))
        .unwrap();
        assert_eq!(s.comment.as_deref(), Some("物流太慢了"));
        assert_eq!(s.locale.as_deref(), Some("zh-CN"));
        assert_eq!(s.served_by.unwrap().bot_intent.as_deref(), Some("track_order"));
    }

    #[test]
    fn stars_must_be_a_whole_number_from_one_to_five() {
        for bad in [json!(0), json!(6), json!(4.5), json!("4"), json!(-1), json!(true)] {
            let mut v = valid();
            v["stars"] = bad.clone();
            let errs = field_errors(v);
            assert_eq!(errs.len(), 1, "{bad}");
            assert_eq!(errs[0].0, "stars");
        }
        let mut v = valid();
        v.as_object_mut().unwrap().remove("stars");
        assert_eq!(field_errors(v), vec![("stars".to_owned(), "required")]);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_field_and_rule() {
        let errs = field_errors(json!({
            "conversation_id": "", "customer_id": "a#b", "stars": 9, "channel": "fax",
            "star": 5, "served_by": {"kind": "robot"}, "locale": "??"
        }));
        let expect = [
            ("star", "unknown_field"),
            ("conversation_id", "not_empty"),
            ("customer_id", "id_charset"),
            ("stars", "range"),
            ("channel", "one_of"),
            ("served_by.kind", "one_of"),
            ("locale", "locale"),
        ];
        for (field, rule) in expect {
            assert!(errs.contains(&(field.to_owned(), rule)), "missing {field}/{rule} in {errs:?}");
        }
        assert_eq!(errs.len(), expect.len());
    }

    #[test]
    fn malformed_or_non_object_bodies_are_told_apart() {
        assert!(matches!(RatingSubmission::from_json(b"{\"stars\": "), Err(InputError::MalformedJson(_))));
        assert!(matches!(RatingSubmission::from_json(b""), Err(InputError::MalformedJson(_))));
        assert_eq!(RatingSubmission::from_json(b"[1,2]"), Err(InputError::NotAnObject));
        let huge = vec![b' '; BODY_MAX_BYTES + 1];
        assert_eq!(RatingSubmission::from_json(&huge), Err(InputError::TooLarge { limit: BODY_MAX_BYTES }));
    }

    #[test]
    fn an_over_long_comment_is_rejected_not_truncated() {
        let mut v = valid();
        v["comment"] = json!("差".repeat(COMMENT_MAX_CHARS + 1));
        assert_eq!(field_errors(v), vec![("comment".to_owned(), "max_length")]);
    }

    #[test]
    fn null_optional_fields_are_absent_fields() {
        let mut v = valid();
        v["comment"] = json!(null);
        v["served_by"] = json!(null);
        assert!(RatingSubmission::from_json(&body(v)).is_ok());
    }

    #[test]
    fn issue_types_from_the_feedback_form_are_checked_against_the_taxonomy() {
        let mut v = valid();
        v["issue_types"] = json!(["logistics", "service", "logistics"]);
        assert_eq!(RatingSubmission::from_json(&body(v.clone())).unwrap().issue_types, ["logistics", "service"]);
        v["issue_types"] = json!(["shipping"]);
        assert_eq!(field_errors(v.clone()), vec![("issue_types".to_owned(), "one_of")]);
        v["issue_types"] = json!("logistics");
        assert_eq!(field_errors(v), vec![("issue_types".to_owned(), "type")]);
    }

    #[test]
    fn order_values_are_kept_exactly_in_minor_units() {
        let mut v = valid();
        v["order_value"] = json!(129.9);
        let s = RatingSubmission::from_json(&body(v.clone())).unwrap();
        assert_eq!(s.order_value_minor, Some(12_990));
        assert_eq!(serde_json::to_value(&s).unwrap()["order_value"], json!(129.9));
        for bad in [json!(-1), json!(1.234), json!("129"), json!(1e12)] {
            v["order_value"] = bad.clone();
            assert_eq!(field_errors(v.clone()).len(), 1, "{bad}");
        }
    }

    #[test]
    fn low_ratings_offer_deeper_feedback() {
        assert!(deeper_feedback(1, 2).offer);
        assert!(deeper_feedback(2, 2).offer);
        assert!(!deeper_feedback(3, 2).offer);
        assert!(deeper_feedback(3, 3).offer);
    }

    #[test]
    fn the_fingerprint_ignores_formatting_but_not_content() {
        let a = RatingSubmission::from_json(
            br#"{"conversation_id":"c","customer_id":"u","stars":2,"channel":"web","comment":" slow "}"#,
        )
        .unwrap();
        let b = RatingSubmission::from_json(
            br#"{ "comment":"slow", "channel":"web","stars":2,"customer_id":"u","conversation_id":"c"}"#,
        )
        .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = RatingSubmission { stars: 3, ..a.clone() };
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert_eq!(check_idempotency_key(b"order-7/try-1").unwrap(), "order-7/try-1");
        assert!(check_idempotency_key(b"").is_err());
        assert!(check_idempotency_key(b"has space").is_err());
        assert!(check_idempotency_key(&[b'k'; 256]).is_err());
    }

    #[test]
    fn rating_ids_sort_by_creation_time() {
        let t1: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
        let t2: Timestamp = "2026-11-25T08:00:01Z".parse().unwrap();
        assert!(new_rating_id(t1) < new_rating_id(t2));
        assert_ne!(new_rating_id(t1), new_rating_id(t1));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = RatingSubmission::from_json(&bytes);
        }

        #[test]
        fn arbitrary_field_values_are_accepted_or_named(
            conv in any::<String>(), stars in any::<i64>(), comment in any::<String>(), channel in any::<String>()
        ) {
            let v = json!({"conversation_id": conv, "customer_id": "u", "stars": stars, "comment": comment, "channel": channel});
            match RatingSubmission::from_json(&body(v)) {
                Ok(s) => {
                    prop_assert!((1..=5).contains(&s.stars));
                    prop_assert!(s.comment.as_ref().is_none_or(|c| c.chars().count() <= COMMENT_MAX_CHARS));
                }
                Err(InputError::Invalid(errs)) => {
                    prop_assert!(!errs.is_empty());
                    prop_assert!(errs.iter().all(|e| FIELDS.contains(&e.field.as_str())));
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
