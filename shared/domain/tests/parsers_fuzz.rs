//! Every parser of outside input, fed at volume with generated input on every `make test` (the
//! coverage-guided fuzz targets in `shared/domain/fuzz` run on nightly, outside the test run): JSON
//! shaped like each body with fields of every type and value, raw bytes, and tokens. None may panic; each answers with the
//! value or an error that names what is wrong, and a valid-looking body is read consistently.
//! `PROPTEST_CASES` raises the volume (the closing note reports a run of 20,000 per parser).

use feedback::Timestamp;
use feedback::conversations::{Closing, MessageBatch};
use feedback::followups::contacts::ContactDetails;
use feedback::followups::link::{LinkPurpose, LinkSigner, RatingLink};
use feedback::ratings::RatingSubmission;
use feedback::validate::InputError;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn now() -> Timestamp {
    "2026-11-25T08:30:00Z".parse().unwrap()
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[0-9+\\-:TZ.]{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with the body's own field names (and a few others), each with any value.
fn body_like(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(fields.to_vec()).prop_map(str::to_owned).boxed();
    let name = prop_oneof![4 => names, 1 => ".{0,10}"];
    prop::collection::vec((name, any_json()), 0..8).prop_map(|pairs| {
        let mut object = Map::new();
        for (k, v) in pairs {
            object.insert(k, v);
        }
        serde_json::to_vec(&Value::Object(object)).unwrap()
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200)
}

/// An error that says what is wrong: a kind, and for invalid fields their names and rules.
fn well_formed(e: &InputError) -> bool {
    match e {
        InputError::Invalid(errors) => !errors.is_empty() && errors.iter().all(|f| !f.rule.is_empty()),
        _ => !e.to_string().is_empty(),
    }
}

const RATING: &[&str] = feedback::ratings::FIELDS;
const MESSAGES: &[&str] = &["customer_id", "messages"];
const MESSAGE: &[&str] = &["message_id", "role", "text", "sent_at", "customer_id", "channel", "bot_intent"];
const CLOSE: &[&str] = &["resolved", "closed_at", "customer_id", "channel", "locale"];
const CONTACT: &[&str] = feedback::followups::contacts::FIELDS;

/// 2,000 cases per run, or `PROPTEST_CASES` when set (the closing note's runs used 20,000).
fn fuzz_cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    #[test]
    fn rating_bodies(body in prop_oneof![body_like(RATING), bytes()]) {
        match RatingSubmission::from_json(&body) {
            Ok(s) => prop_assert!((1..=5).contains(&s.stars) && !s.conversation_id.is_empty()),
            Err(e) => prop_assert!(well_formed(&e), "{e:?}"),
        }
    }

    #[test]
    fn message_bodies(
        body in prop_oneof![
            body_like(MESSAGES),
            prop::collection::vec(body_like(MESSAGE), 0..4).prop_map(|messages| {
                let messages: Vec<Value> = messages.iter().map(|m| serde_json::from_slice(m).unwrap()).collect();
                serde_json::to_vec(&json!({"customer_id": "u-1", "messages": messages})).unwrap()
            }),
            bytes(),
        ]
    ) {
        match MessageBatch::from_json("c-1".into(), &body, now()) {
            Ok(b) => prop_assert!(!b.messages.is_empty() && b.messages.iter().all(|m| m.sent_at <= now() + jiff::SignedDuration::from_mins(5))),
            Err(e) => prop_assert!(well_formed(&e), "{e:?}"),
        }
    }

    #[test]
    fn close_bodies(body in prop_oneof![body_like(CLOSE), bytes()]) {
        match Closing::from_json("c-1".into(), &body, now()) {
            Ok(c) => prop_assert!(c.closed_at <= now() + jiff::SignedDuration::from_mins(5)),
            Err(e) => prop_assert!(well_formed(&e), "{e:?}"),
        }
    }

    #[test]
    fn contact_bodies(body in prop_oneof![body_like(CONTACT), bytes()]) {
        match ContactDetails::from_json("u-1".into(), &body, now()) {
            Ok(c) => prop_assert!(c.email.as_deref().is_none_or(str::is_ascii)),
            Err(e) => prop_assert!(well_formed(&e), "{e:?}"),
        }
    }

    #[test]
    fn link_tokens(token in prop_oneof![".{0,120}", "[A-Za-z0-9_\\-]{0,60}\\.[A-Za-z0-9_\\-]{0,60}"], unsubscribe in any::<bool>()) {
        let signer = LinkSigner::new(b"test key test key test key test key!").unwrap();
        let purpose = if unsubscribe { LinkPurpose::Unsubscribe } else { LinkPurpose::Rate };
        // A random token never verifies (the chance of a matching HMAC is nil).
        prop_assert!(signer.verify_for(purpose, &token, now()).is_err());
    }

    #[test]
    fn signed_tokens_read_back_and_tampering_is_caught(conv in "[a-z0-9\\-]{1,40}", nonce in "[A-Z0-9]{1,26}", flip in 0usize..200) {
        let signer = LinkSigner::new(b"test key test key test key test key!").unwrap();
        let link = RatingLink { conversation_id: conv.into(), expires_at: now() + jiff::SignedDuration::from_hours(24), nonce };
        let token = signer.sign(&link);
        prop_assert_eq!(signer.verify(&token, now()).unwrap(), link);
        let mut tampered = token.clone().into_bytes();
        let at = flip % tampered.len();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        prop_assert!(tampered == token || signer.verify(&tampered, now()).is_err());
    }
}
