//! A chat conversation: where it happened, who served the customer, the messages the chat
//! platform records, and how it was closed. Reading and checking requests lives here; what happens
//! to them is in `intake`.

pub mod intake;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Timestamp;
use crate::validate::InputError;
use crate::validate::{Fields, check_id, check_text};

/// Where the customer talked to the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    App,
    Wechat,
    MiniProgram,
    Whatsapp,
    Email,
    Sms,
    Phone,
}

impl Channel {
    pub const ALL: [(&'static str, Channel); 8] = [
        ("web", Channel::Web),
        ("app", Channel::App),
        ("wechat", Channel::Wechat),
        ("mini_program", Channel::MiniProgram),
        ("whatsapp", Channel::Whatsapp),
        ("email", Channel::Email),
        ("sms", Channel::Sms),
        ("phone", Channel::Phone),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, c)| *c == self).map(|(n, _)| *n).unwrap_or("web")
    }
}

/// Who handled the conversation: the bot alone, or a human agent (possibly after a bot hand-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServedByKind {
    Bot,
    Agent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedBy {
    pub kind: ServedByKind,
    /// The bot intent that handled the conversation (e.g. `track_order`), where the bot knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl ServedBy {
    pub(crate) fn parse(fields: &mut Fields<'_>, key: &str, object: &Map<String, Value>) -> Option<ServedBy> {
        let prefix = fields.path(key);
        let mut inner = Fields::new(object, &prefix, &["kind", "bot_intent", "agent_id"]);
        let kind = inner.one_of("kind", true, &[("bot", ServedByKind::Bot), ("agent", ServedByKind::Agent)]);
        let bot_intent = inner.string("bot_intent", false).and_then(|raw| {
            let path = inner.path("bot_intent");
            inner.keep(check_id(&path, raw))
        });
        let agent_id = inner.id("agent_id", false);
        if kind == Some(ServedByKind::Bot) && agent_id.is_some() {
            inner.fail("agent_id", "not_allowed", "is only allowed when kind is \"agent\"");
        }
        let ok = inner.errors.is_empty();
        fields.errors.append(&mut inner.errors);
        if ok { kind.map(|kind| ServedBy { kind, bot_intent, agent_id }) } else { None }
    }
}

/// Who wrote a message. Only customer messages are feedback (and can trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Bot,
    Agent,
}

pub const MESSAGE_TEXT_MAX_CHARS: usize = 4_000;
pub const MESSAGES_PER_CALL_MAX: usize = 50;
/// 50 messages of 4,000 characters, even if every character arrives as a `\uXXXX` escape.
pub const MESSAGES_BODY_MAX_BYTES: usize = 1_536 * 1024;
/// How far ahead of our clock a client's timestamp may be (clock skew), before it is an error.
pub const CLOCK_SKEW_SECONDS: i64 = 300;

const MESSAGE_FIELDS: &[&str] = &["message_id", "role", "text", "sent_at", "customer_id", "channel", "bot_intent"];

/// One chat message as the chat platform sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub message_id: String,
    pub role: Role,
    /// Cleaned (see `validate::clean_text`); may be empty (a sticker or an image).
    pub text: String,
    pub sent_at: Timestamp,
    pub customer_id: crate::ids::CustomerId,
    pub channel: Channel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_intent: Option<String>,
}

impl ChatMessage {
    /// A digest of the content, to tell a resend (same digest) from a different message reusing
    /// an id (a conflict).
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a message always serialises");
        hex::encode(Sha256::digest(&canonical))
    }
}

/// Messages of one conversation, checked: 1 to 50, one customer, no id used twice for different
/// content (an exact repeat inside one call is dropped). Sorted by `sent_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageBatch {
    pub conversation_id: crate::ids::ConversationId,
    pub customer_id: crate::ids::CustomerId,
    pub messages: Vec<ChatMessage>,
}

pub(crate) fn timestamp(f: &mut Fields<'_>, key: &str, required: bool, now: Timestamp) -> Option<Timestamp> {
    let raw = f.string(key, required)?;
    match raw.parse::<Timestamp>() {
        Ok(t) if t.as_second() > now.as_second() + CLOCK_SKEW_SECONDS => {
            f.fail(key, "in_future", format!("must not be later than now ({now})"));
            None
        }
        Ok(t) if t.as_second() < 946_684_800 => {
            f.fail(key, "too_old", "must be after 2000-01-01");
            None
        }
        Ok(t) => Some(Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)),
        Err(_) => {
            f.fail(key, "timestamp", "must be an RFC 3339 time with a UTC offset, e.g. 2026-11-25T08:30:00+08:00");
            None
        }
    }
}

/// The conversation id from the request path.
pub fn check_conversation_id(raw: Option<&str>) -> Result<String, InputError> {
    check_id("conversation_id", raw.unwrap_or("")).map_err(|e| InputError::Invalid(vec![e]))
}

impl MessageBatch {
    /// Reads a `POST /conversations/{id}/messages` body: `{"messages": [...]}`.
    pub fn from_json(conversation_id: String, body: &[u8], now: Timestamp) -> Result<Self, InputError> {
        let object = crate::validate::json_object(body, MESSAGES_BODY_MAX_BYTES)?;
        let mut f = Fields::new(&object, "", &["messages"]);
        let items = match object.get("messages") {
            Some(Value::Array(items)) if items.is_empty() => {
                f.fail("messages", "not_empty", "must hold at least one message");
                &[][..]
            }
            Some(Value::Array(items)) if items.len() > MESSAGES_PER_CALL_MAX => {
                f.fail(
                    "messages",
                    "max_items",
                    format!(
                        "must hold at most {MESSAGES_PER_CALL_MAX} messages (got {}); send them in several calls",
                        items.len()
                    ),
                );
                &[][..]
            }
            Some(Value::Array(items)) => &items[..],
            None | Some(Value::Null) => {
                f.fail("messages", "required", "is required: an array of messages");
                &[][..]
            }
            Some(_) => {
                f.fail("messages", "type", "must be an array of messages");
                &[][..]
            }
        };
        let mut messages: Vec<ChatMessage> = Vec::with_capacity(items.len());
        let mut errors = std::mem::take(&mut f.errors);
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("messages[{i}]");
            let Value::Object(o) = item else {
                errors.push(crate::validate::FieldError::new(prefix, "type", "must be an object"));
                continue;
            };
            let mut m = Fields::new(o, &prefix, MESSAGE_FIELDS);
            let message_id = m.id("message_id", true);
            let role =
                m.one_of("role", true, &[("customer", Role::Customer), ("bot", Role::Bot), ("agent", Role::Agent)]);
            let text = m.string("text", true).and_then(|raw| {
                let path = m.path("text");
                m.keep(check_text(&path, raw, MESSAGE_TEXT_MAX_CHARS)).map(Option::unwrap_or_default)
            });
            let sent_at = timestamp(&mut m, "sent_at", true, now);
            let customer_id = m.id("customer_id", true);
            let channel = m.one_of("channel", true, &Channel::ALL);
            let bot_intent = m.id("bot_intent", false);
            if bot_intent.is_some() && role == Some(Role::Customer) {
                m.fail("bot_intent", "not_allowed", "is only allowed on bot messages");
            }
            if let (Some(first), Some(this)) = (messages.first(), &customer_id)
                && &first.customer_id != this
            {
                m.fail(
                    "customer_id",
                    "same_customer",
                    format!("must be the conversation's customer ({:?}) in every message", first.customer_id),
                );
            }
            let ok = m.errors.is_empty();
            errors.append(&mut m.errors);
            if let (true, Some(message_id), Some(role), Some(text), Some(sent_at), Some(customer_id), Some(channel)) =
                (ok, message_id, role, text, sent_at, customer_id, channel)
            {
                let message = ChatMessage {
                    message_id,
                    role,
                    text,
                    sent_at,
                    customer_id: customer_id.into(),
                    channel,
                    bot_intent,
                };
                match messages.iter().find(|seen| seen.message_id == message.message_id) {
                    Some(seen) if *seen == message => {}
                    Some(_) => errors.push(crate::validate::FieldError::new(
                        format!("{prefix}.message_id"),
                        "duplicate_id",
                        "is used by another message with different content in this call",
                    )),
                    None => messages.push(message),
                }
            }
        }
        if !errors.is_empty() {
            return Err(InputError::Invalid(errors));
        }
        messages.sort_by_key(|m| m.sent_at);
        let customer_id = messages[0].customer_id.clone();
        Ok(MessageBatch { conversation_id: conversation_id.into(), customer_id, messages })
    }
}

/// `POST /conversations/{id}/close`: how the conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub conversation_id: crate::ids::ConversationId,
    /// Did the chat solve the customer's problem? Unresolved ones get a follow-up later.
    pub resolved: bool,
    pub closed_at: Timestamp,
    /// Optional here when the conversation's messages already named the customer.
    pub customer_id: Option<crate::ids::CustomerId>,
    pub channel: Option<Channel>,
    pub locale: Option<String>,
    /// The agent who served the conversation, when one did (its scorecard row).
    pub agent_id: Option<String>,
}

pub const CLOSE_BODY_MAX_BYTES: usize = 4 * 1024;

impl Closing {
    /// `closed_at` defaults to `now` when the platform leaves it out.
    pub fn from_json(conversation_id: String, body: &[u8], now: Timestamp) -> Result<Self, InputError> {
        let object = crate::validate::json_object(body, CLOSE_BODY_MAX_BYTES)?;
        let mut f =
            Fields::new(&object, "", &["resolved", "closed_at", "customer_id", "channel", "locale", "agent_id"]);
        let resolved = f.bool("resolved");
        let closed_at = timestamp(&mut f, "closed_at", false, now);
        let customer_id = f.id("customer_id", false);
        let channel = f.one_of("channel", false, &Channel::ALL);
        let locale = f.string("locale", false).and_then(|raw| f.keep(crate::validate::check_locale("locale", raw)));
        let agent_id = f.id("agent_id", false);
        match resolved {
            Some(resolved) if f.errors.is_empty() => Ok(Closing {
                conversation_id: conversation_id.into(),
                resolved,
                closed_at: closed_at.unwrap_or(Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)),
                customer_id: customer_id.map(Into::into),
                channel,
                locale,
                agent_id,
            }),
            _ => Err(InputError::Invalid(f.errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-25T08:00:00Z".parse().unwrap()
    }

    fn msg(id: &str, role: &str, text: &str) -> Value {
        json!({"message_id": id, "role": role, "text": text, "sent_at": "2026-11-25T07:59:00+08:00",
               "customer_id": "u-1", "channel": "wechat"})
    }

    fn parse(v: Value) -> Result<MessageBatch, InputError> {
        MessageBatch::from_json("c-1".into(), &serde_json::to_vec(&v).unwrap(), now())
    }

    fn rules_broken(v: Value) -> Vec<(String, &'static str)> {
        match parse(v) {
            Err(InputError::Invalid(errs)) => errs.into_iter().map(|e| (e.field, e.rule)).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_is_read_cleaned_and_sorted_by_time() {
        let mut late = msg("m-2", "bot", "  您好 \u{200B}");
        late["sent_at"] = json!("2026-11-25T08:00:00+08:00");
        late["bot_intent"] = json!("greeting");
        let b = parse(json!({"messages": [late, msg("m-1", "customer", "在吗")]})).unwrap();
        assert_eq!(b.customer_id, "u-1");
        let ids: Vec<&str> = b.messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["m-1", "m-2"]);
        assert_eq!(b.messages[1].text, "您好");
        assert_eq!(b.messages[1].sent_at, "2026-11-25T00:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn limits_on_count_and_length_are_enforced_with_the_field_named() {
        let many: Vec<Value> = (0..51).map(|i| msg(&format!("m-{i}"), "customer", "hi")).collect();
        assert_eq!(rules_broken(json!({"messages": many})), vec![("messages".to_owned(), "max_items")]);
        assert_eq!(rules_broken(json!({"messages": []})), vec![("messages".to_owned(), "not_empty")]);
        let long = msg("m-1", "customer", &"好".repeat(MESSAGE_TEXT_MAX_CHARS + 1));
        assert_eq!(rules_broken(json!({"messages": [long]})), vec![("messages[0].text".to_owned(), "max_length")]);
        let fine = msg("m-1", "customer", &"好".repeat(MESSAGE_TEXT_MAX_CHARS));
        assert!(parse(json!({"messages": [fine]})).is_ok());
    }

    #[test]
    fn every_broken_message_field_is_reported() {
        let mut bad = msg("m 1", "robot", "x");
        bad["sent_at"] = json!("yesterday");
        bad["channel"] = json!("fax");
        bad["extra"] = json!(1);
        let mut future = msg("m-2", "customer", "x");
        future["sent_at"] = json!("2026-11-25T09:00:00Z");
        let mut other_customer = msg("m-3", "customer", "x");
        other_customer["customer_id"] = json!("u-2");
        let mut intent_on_customer = msg("m-4", "customer", "x");
        intent_on_customer["bot_intent"] = json!("refund");
        let errs = rules_broken(
            json!({"messages": [msg("m-0", "customer", "x"), bad, future, other_customer, intent_on_customer, 7]}),
        );
        for expected in [
            ("messages[1].extra", "unknown_field"),
            ("messages[1].message_id", "id_charset"),
            ("messages[1].role", "one_of"),
            ("messages[1].sent_at", "timestamp"),
            ("messages[1].channel", "one_of"),
            ("messages[2].sent_at", "in_future"),
            ("messages[3].customer_id", "same_customer"),
            ("messages[4].bot_intent", "not_allowed"),
            ("messages[5]", "type"),
        ] {
            assert!(errs.contains(&(expected.0.to_owned(), expected.1)), "missing {expected:?} in {errs:?}");
        }
    }

    #[test]
    fn a_repeated_message_in_one_call_is_dropped_but_a_reused_id_is_an_error() {
        let b = parse(json!({"messages": [msg("m-1", "customer", "hi"), msg("m-1", "customer", "hi")]})).unwrap();
        assert_eq!(b.messages.len(), 1);
        let errs = rules_broken(json!({"messages": [msg("m-1", "customer", "hi"), msg("m-1", "customer", "bye")]}));
        assert_eq!(errs, vec![("messages[1].message_id".to_owned(), "duplicate_id")]);
    }

    #[test]
    fn bodies_that_are_not_batches_are_told_apart() {
        assert!(matches!(parse(json!([1])), Err(InputError::NotAnObject)));
        assert_eq!(rules_broken(json!({})), vec![("messages".to_owned(), "required")]);
        assert_eq!(rules_broken(json!({"messages": "hi"})), vec![("messages".to_owned(), "type")]);
        assert!(matches!(MessageBatch::from_json("c".into(), b"{", now()), Err(InputError::MalformedJson(_))));
    }

    #[test]
    fn a_closing_needs_resolved_and_defaults_its_time() {
        let c = Closing::from_json("c-1".into(), br#"{"resolved": false}"#, now()).unwrap();
        assert_eq!((c.resolved, c.closed_at), (false, now()));
        let c = Closing::from_json(
            "c-1".into(),
            br#"{"resolved": true, "closed_at": "2026-11-25T15:00:00+08:00", "customer_id": "u-1", "locale": "en-us"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(c.closed_at, now() - jiff::SignedDuration::from_hours(1));
        assert_eq!(c.locale.as_deref(), Some("en-US"));
        for (body, field, rule) in [
            (r#"{}"#, "resolved", "required"),
            (r#"{"resolved": "no"}"#, "resolved", "type"),
            (r#"{"resolved": true, "closed_at": "2027-01-01T00:00:00Z"}"#, "closed_at", "in_future"),
            (r#"{"resolved": true, "solved": true}"#, "solved", "unknown_field"),
        ] {
            match Closing::from_json("c-1".into(), body.as_bytes(), now()) {
                Err(InputError::Invalid(errs)) => {
                    assert!(errs.iter().any(|e| e.field == field && e.rule == rule), "{body}: {errs:?}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = MessageBatch::from_json("c".into(), &bytes, now());
            let _ = Closing::from_json("c".into(), &bytes, now());
        }

        #[test]
        fn arbitrary_texts_are_accepted_within_the_limit(text in any::<String>()) {
            match parse(json!({"messages": [msg("m-1", "customer", &text)]})) {
                Ok(b) => prop_assert!(b.messages[0].text.chars().count() <= MESSAGE_TEXT_MAX_CHARS),
                Err(e) => prop_assert!(false, "{:?}", e),
            }
        }
    }
}
