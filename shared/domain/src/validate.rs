//! Field-level validation shared by every intake path: identifiers, free text, locales.
//!
//! Rules are deliberately strict on identifiers (they become parts of DynamoDB keys and log fields)
//! and forgiving on free text (customers type anything; we clean it rather than reject it).

use serde::Serialize;
use serde_json::{Map, Value};

pub const COMMENT_MAX_CHARS: usize = 2_000;

/// Why a request body could not be read. Every variant is the caller's to fix (4xx).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("content type {0:?} is not supported; send application/json")]
    UnsupportedMediaType(String),
    #[error("{} field(s) are invalid", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("header {header} is invalid: {detail}")]
    BadHeader { header: &'static str, detail: String },
}

/// One broken rule on one field. `field` is a JSON path (`served_by.kind`), `rule` a stable
/// machine-readable code, `detail` a sentence for the person integrating with the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub rule: &'static str,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: &'static str, detail: impl Into<String>) -> Self {
        Self { field: field.into(), rule, detail: detail.into() }
    }
}

pub const ID_MAX_LEN: usize = 128;

/// Identifiers (conversation, customer, agent, message ids) are 1–128 characters of
/// `A-Z a-z 0-9 _ . : -`, starting with a letter or digit. `#` is excluded because it separates
/// the parts of our table keys; anything outside ASCII is excluded so ids are safe in logs and URLs.
pub fn check_id(field: &str, raw: &str) -> Result<String, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(field, "not_empty", "must not be empty"));
    }
    if raw.len() > ID_MAX_LEN {
        return Err(FieldError::new(
            field,
            "max_length",
            format!("must be at most {ID_MAX_LEN} characters (got {})", raw.chars().count()),
        ));
    }
    let first_ok = raw.as_bytes()[0].is_ascii_alphanumeric();
    let all_ok = raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if !first_ok || !all_ok {
        return Err(FieldError::new(
            field,
            "id_charset",
            "may contain only letters, digits, '_', '.', ':' and '-', and must start with a letter or digit",
        ));
    }
    Ok(raw.to_owned())
}

/// Cleans customer-typed text: CRLF/CR become LF, tabs become spaces, other control characters and
/// invisible bidi/zero-width formatting (which can disguise text in staff tools) are removed, and
/// the result is trimmed. The zero-width joiner is kept: emoji sequences need it.
pub fn clean_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' => out.push('\n'),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            '\u{200B}'
            | '\u{200C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() { out } else { trimmed.to_owned() }
}

/// Optional free text: cleaned, `None` when nothing is left, rejected when longer than `max_chars`
/// (counted in Unicode scalar values, which is what a customer sees as characters for CJK text).
pub fn check_text(field: &str, raw: &str, max_chars: usize) -> Result<Option<String>, FieldError> {
    let cleaned = clean_text(raw);
    let len = cleaned.chars().count();
    if len > max_chars {
        return Err(FieldError::new(
            field,
            "max_length",
            format!("must be at most {max_chars} characters after trimming (got {len})"),
        ));
    }
    Ok(if cleaned.is_empty() { None } else { Some(cleaned) })
}

/// A BCP 47 language tag of the simple shapes shops use (`zh`, `zh-CN`, `zh-Hans-CN`, `en-US`),
/// returned in canonical case (`zh-Hans-CN`).
pub fn check_locale(field: &str, raw: &str) -> Result<String, FieldError> {
    let bad = || FieldError::new(field, "locale", "must be a language tag such as \"zh-CN\" or \"en\"");
    if raw.is_empty() || raw.len() > 35 {
        return Err(bad());
    }
    let mut out = Vec::new();
    for (i, part) in raw.split(['-', '_']).enumerate() {
        let alnum = part.bytes().all(|b| b.is_ascii_alphanumeric());
        let canonical = match (i, part.len()) {
            (0, 2..=3) if part.bytes().all(|b| b.is_ascii_alphabetic()) => part.to_ascii_lowercase(),
            (0, _) => return Err(bad()),
            (_, 2) if part.bytes().all(|b| b.is_ascii_alphabetic()) => part.to_ascii_uppercase(),
            (_, 4) if part.bytes().all(|b| b.is_ascii_alphabetic()) => {
                let lower = part.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            (_, 1..=8) if alnum => part.to_ascii_lowercase(),
            _ => return Err(bad()),
        };
        out.push(canonical);
    }
    Ok(out.join("-"))
}

/// A request body that must be a JSON object of at most `max_bytes`.
pub fn json_object(body: &[u8], max_bytes: usize) -> Result<Map<String, Value>, crate::validate::InputError> {
    if body.len() > max_bytes {
        return Err(InputError::TooLarge { limit: max_bytes });
    }
    match serde_json::from_slice::<Strict>(body).map_err(|e| InputError::MalformedJson(e.to_string()))?.0 {
        Value::Object(object) => Ok(object),
        _ => Err(InputError::NotAnObject),
    }
}

/// A JSON value read strictly: an object that names a key twice is refused (serde_json would keep
/// the last one silently, so `{"stars": 1, "stars": 5}` would mean 5 to us and 1 to a proxy).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("the key {key:?} appears twice")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Reads fields out of a JSON object while collecting every problem, so one response can name all
/// of them instead of making the integrator fix one field per round trip.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: String,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// `allowed` lists the known fields; any other field is reported as `unknown_field`.
    pub fn new(object: &'a Map<String, Value>, prefix: &str, allowed: &[&str]) -> Self {
        let mut errors = Vec::new();
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    join(prefix, key),
                    "unknown_field",
                    format!("is not a known field; expected one of: {}", allowed.join(", ")),
                ));
            }
        }
        Self { object, prefix: prefix.to_owned(), errors }
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.prefix, key)
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    pub fn fail(&mut self, key: &str, rule: &'static str, detail: impl Into<String>) {
        let field = self.path(key);
        self.errors.push(FieldError::new(field, rule, detail));
    }

    /// A string field; `None` when absent or null. A missing required one is reported.
    pub fn string(&mut self, key: &str, required: bool) -> Option<&'a str> {
        match self.present(key) {
            None => {
                if required {
                    self.fail(key, "required", "is required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.fail(key, "type", "must be a string");
                None
            }
        }
    }

    pub fn id(&mut self, key: &str, required: bool) -> Option<String> {
        let raw = self.string(key, required)?;
        self.keep(check_id(&self.path(key), raw))
    }

    pub fn integer_in(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let detail = format!("must be a whole number from {min} to {max}");
        match self.present(key) {
            None => {
                self.fail(key, "required", "is required");
                None
            }
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    self.fail(key, "range", detail);
                    None
                }
            },
            Some(_) => {
                self.fail(key, "type", detail);
                None
            }
        }
    }

    /// An optional amount of money in the shop's currency (at most 2 decimals, 0 to `max`), as
    /// minor units (fen, cents) so sums stay exact.
    pub fn amount(&mut self, key: &str, max: i64) -> Option<i64> {
        let detail = format!("must be an amount from 0 to {max} with at most 2 decimals");
        match self.present(key) {
            None => None,
            Some(Value::Number(n)) => {
                let minor = n.as_f64().map(|v| v * 100.0).filter(|m| m.is_finite());
                match minor {
                    Some(m) if (0.0..=(max as f64) * 100.0).contains(&m) && (m - m.round()).abs() < 1e-6 => {
                        Some(m.round() as i64)
                    }
                    _ => {
                        self.fail(key, "amount", detail);
                        None
                    }
                }
            }
            Some(_) => {
                self.fail(key, "type", detail);
                None
            }
        }
    }

    pub fn bool(&mut self, key: &str) -> Option<bool> {
        match self.present(key) {
            None => {
                self.fail(key, "required", "is required");
                None
            }
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(key, "type", "must be true or false");
                None
            }
        }
    }

    pub fn object(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        match self.present(key) {
            None => None,
            Some(Value::Object(o)) => Some(o),
            Some(_) => {
                self.fail(key, "type", "must be an object");
                None
            }
        }
    }

    /// One of a fixed set of snake_case names.
    pub fn one_of<T: Copy>(&mut self, key: &str, required: bool, choices: &[(&str, T)]) -> Option<T> {
        let raw = self.string(key, required)?;
        match choices.iter().find(|(name, _)| *name == raw) {
            Some((_, v)) => Some(*v),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.fail(key, "one_of", format!("must be one of: {}", names.join(", ")));
                None
            }
        }
    }

    pub fn keep<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        for body in [r#"{"stars": 1, "stars": 5}"#, r#"{"messages": [{"text": "a", "text": "b"}]}"#] {
            let err = json_object(body.as_bytes(), 1024).unwrap_err();
            assert!(matches!(&err, InputError::MalformedJson(why) if why.contains("appears twice")), "{body}: {err:?}");
        }
        let ok = json_object(br#"{"a": [1, 2.5, true, null, {"b": "c"}], "d": {"e": -3}}"#, 1024).unwrap();
        assert_eq!(
            serde_json::Value::Object(ok),
            serde_json::json!({"a": [1, 2.5, true, null, {"b": "c"}], "d": {"e": -3}})
        );
    }

    #[test]
    fn ids_with_key_separators_or_spaces_are_rejected() {
        assert_eq!(check_id("id", "conv-1:a.b_c").unwrap(), "conv-1:a.b_c");
        for bad in ["", "a#b", "a b", "-leading", "会话", &"x".repeat(129)] {
            assert!(check_id("id", bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(check_id("id", "").unwrap_err().rule, "not_empty");
        assert_eq!(check_id("id", &"x".repeat(129)).unwrap_err().rule, "max_length");
    }

    #[test]
    fn customer_text_is_cleaned_not_rejected() {
        assert_eq!(clean_text("  很好\r\n谢谢\t!\u{0007}\u{202E} "), "很好\n谢谢 !");
        assert_eq!(clean_text("👨\u{200D}👩\u{200D}👧"), "👨\u{200D}👩\u{200D}👧");
        assert_eq!(check_text("comment", " \n\t ", 10).unwrap(), None);
    }

    #[test]
    fn comment_length_counts_characters_not_bytes() {
        assert!(check_text("comment", &"好".repeat(2000), 2000).unwrap().is_some());
        let err = check_text("comment", &"好".repeat(2001), 2000).unwrap_err();
        assert_eq!((err.field.as_str(), err.rule), ("comment", "max_length"));
        // Surrounding whitespace does not count against the limit.
        assert!(check_text("comment", &format!("   {}   ", "a".repeat(2000)), 2000).is_ok());
    }

    #[test]
    fn locales_are_canonicalised() {
        assert_eq!(check_locale("l", "zh-cn").unwrap(), "zh-CN");
        assert_eq!(check_locale("l", "ZH_hans_cn").unwrap(), "zh-Hans-CN");
        assert_eq!(check_locale("l", "en").unwrap(), "en");
        for bad in ["", "z", "zh-", "chinese", "zh CN", "zh-!"] {
            assert!(check_locale("l", bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn cleaned_text_has_no_controls_and_is_stable(s in any::<String>()) {
            let once = clean_text(&s);
            prop_assert!(once.chars().all(|c| c == '\n' || !c.is_control()));
            prop_assert_eq!(clean_text(&once), once.clone());
            prop_assert_eq!(once.trim(), once.as_str());
        }

        #[test]
        fn accepted_ids_are_key_safe(s in any::<String>()) {
            if let Ok(id) = check_id("id", &s) {
                prop_assert!(!id.contains('#') && !id.is_empty() && id.len() <= ID_MAX_LEN);
                prop_assert!(id.is_ascii());
            }
        }

        #[test]
        fn well_formed_ids_are_accepted(s in "[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}") {
            prop_assert_eq!(check_id("id", &s).unwrap(), s);
        }
    }
}
