//! A customer's contact details and consent, as the storefront or CRM sends them: where a
//! follow-up may go (e-mail, SMS), when (their time zone) and in which language.
//!
//! Addresses are personal data: they are validated, stored, and shown back only masked; logs carry
//! the customer id and which channels exist, never the addresses.

use std::future::Future;

use serde::Serialize;
use serde_json::Value;

use crate::Timestamp;
use crate::validate::InputError;
use crate::validate::{FieldError, Fields, check_locale, json_object};

pub const CONTACT_BODY_MAX_BYTES: usize = 4 * 1024;
/// The fields of `PUT /customers/{id}/contact`.
pub const FIELDS: &[&str] = &["email", "phone", "consent", "time_zone", "locale"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub email: bool,
    pub sms: bool,
    /// Agreed to take part in the research panel (invitations to surveys, by a consented
    /// channel). Optional in the body, default false.
    pub research: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactDetails {
    pub customer_id: crate::ids::CustomerId,
    /// Lower-cased domain; the local part as given.
    pub email: Option<String>,
    /// E.164 (`+8613812345678`).
    pub phone: Option<String>,
    pub consent: Consent,
    /// IANA name (`Asia/Shanghai`).
    pub time_zone: String,
    pub locale: String,
    pub updated_at: Timestamp,
}

/// Checks an e-mail address's shape: one `@`, a local part and a dotted domain, no spaces, at most
/// 254 characters. (Whether it receives mail only sending can tell.)
pub fn check_email(field: &str, raw: &str) -> Result<String, FieldError> {
    let bad = || FieldError::new(field, "email", "must be an e-mail address such as name@example.com");
    // SES sends to ASCII addresses only (an internationalised domain in its xn-- form is ASCII):
    // a Chinese address would be accepted and then fail at every follow-up.
    if !raw.is_ascii() {
        return Err(FieldError::new(
            field,
            "email_ascii",
            "must be an ASCII e-mail address (write an internationalised domain in its xn-- form)",
        ));
    }
    let raw = raw.trim();
    let (local, domain) = raw.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    if raw.len() > 254 || !domain_ok || !local_ok {
        return Err(bad());
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// Checks an E.164 phone number: `+`, a country code not starting with 0, 8 to 15 digits in all.
/// Spaces and dashes people type are removed first.
pub fn check_phone(field: &str, raw: &str) -> Result<String, FieldError> {
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if ok {
        Ok(compact)
    } else {
        Err(FieldError::new(field, "e164", "must be an international number in E.164 form, such as +8613812345678"))
    }
}

pub fn check_time_zone(field: &str, raw: &str) -> Result<String, FieldError> {
    match jiff::tz::TimeZone::get(raw) {
        Ok(_) if raw.contains('/') || raw == "UTC" => Ok(raw.to_owned()),
        _ => Err(FieldError::new(field, "time_zone", "must be an IANA time zone such as Asia/Shanghai")),
    }
}

impl ContactDetails {
    /// Reads a `PUT /customers/{id}/contact` body.
    pub fn from_json(customer_id: String, body: &[u8], now: Timestamp) -> Result<Self, InputError> {
        let object = json_object(body, CONTACT_BODY_MAX_BYTES)?;
        let mut f = Fields::new(&object, "", FIELDS);
        let email = f.string("email", false).and_then(|raw| f.keep(check_email("email", raw)));
        let phone = f.string("phone", false).and_then(|raw| f.keep(check_phone("phone", raw)));
        let consent = match object.get("consent") {
            Some(Value::Object(o)) => {
                let mut c = Fields::new(o, "consent", &["email", "sms", "research"]);
                let research = match o.get("research") {
                    None | Some(Value::Null) => Some(false),
                    Some(_) => c.bool("research"),
                };
                let consent = match (c.bool("email"), c.bool("sms"), research) {
                    (Some(email), Some(sms), Some(research)) => Some(Consent { email, sms, research }),
                    _ => None,
                };
                f.errors.append(&mut c.errors);
                consent
            }
            None | Some(Value::Null) => {
                f.fail("consent", "required", "is required: {\"email\": bool, \"sms\": bool}");
                None
            }
            Some(_) => {
                f.fail("consent", "type", "must be an object {\"email\": bool, \"sms\": bool}");
                None
            }
        };
        // Given but invalid is reported on the field itself; absent or null is no address.
        let given = |k: &str| object.get(k).is_some_and(|v| !v.is_null());
        if let Some(c) = consent {
            if c.email && email.is_none() && !given("email") {
                f.fail("consent.email", "needs_address", "is true but no email is given");
            }
            if c.sms && phone.is_none() && !given("phone") {
                f.fail("consent.sms", "needs_address", "is true but no phone is given");
            }
        }
        let time_zone = f.string("time_zone", true).and_then(|raw| f.keep(check_time_zone("time_zone", raw)));
        let locale = f.string("locale", true).and_then(|raw| f.keep(check_locale("locale", raw)));
        match (consent, time_zone, locale) {
            (Some(consent), Some(time_zone), Some(locale)) if f.errors.is_empty() => Ok(ContactDetails {
                customer_id: customer_id.into(),
                email,
                phone,
                consent,
                time_zone,
                locale,
                updated_at: now,
            }),
            _ => Err(InputError::Invalid(f.errors)),
        }
    }
}

/// Where contact details are kept (one record per customer; a newer PUT replaces it).
pub trait ContactStore {
    fn put_contact(
        &self,
        contact: &ContactDetails,
    ) -> impl Future<Output = Result<(), crate::errors::StoreError>> + Send;

    /// Records that mail to `address` bounced for good or drew a complaint: e-mail follow-ups to
    /// it stop. By address (its digest), so details with another address are mailed again.
    fn suppress_email(
        &self,
        address: &str,
        reason: &str,
        at: crate::Timestamp,
    ) -> impl Future<Output = Result<(), crate::errors::StoreError>> + Send;
}

/// What an address is suppressed under: the SHA-256 of the address, trimmed and lower-cased (the
/// address is not stored a second time, and `A@Example.com` is `a@example.com`).
pub fn address_digest(address: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(address.trim().to_lowercase().as_bytes()))
}

/// What the caller gets back: the details with the addresses masked.
#[derive(Debug, Serialize)]
pub struct ContactReceipt<'a> {
    pub customer_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub consent: Consent,
    pub time_zone: &'a str,
    pub locale: &'a str,
    pub updated_at: Timestamp,
}

impl<'a> ContactReceipt<'a> {
    pub fn new(c: &'a ContactDetails) -> Self {
        ContactReceipt {
            customer_id: &c.customer_id,
            email: c.email.as_deref().map(mask_email),
            phone: c.phone.as_deref().map(mask_phone),
            consent: c.consent,
            time_zone: &c.time_zone,
            locale: &c.locale,
            updated_at: c.updated_at,
        }
    }
}

/// `z***@example.com`
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// `+86*******5678`
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    phone.chars().enumerate().map(|(i, c)| if i < 3 || i + 4 >= n { c } else { '*' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-25T08:00:00Z".parse().unwrap()
    }

    fn parse(v: Value) -> Result<ContactDetails, InputError> {
        ContactDetails::from_json("u-1".into(), &serde_json::to_vec(&v).unwrap(), now())
    }

    fn broken(v: Value) -> Vec<(String, &'static str)> {
        match parse(v) {
            Err(InputError::Invalid(errs)) => errs.into_iter().map(|e| (e.field, e.rule)).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_contact_is_cleaned() {
        let c = parse(json!({"email": "Zhang.San@Example.COM", "phone": "+86 138-1234-5678",
            "consent": {"email": true, "sms": false}, "time_zone": "Asia/Shanghai", "locale": "zh-cn"}))
        .unwrap();
        assert_eq!(c.email.as_deref(), Some("Zhang.San@example.com"));
        assert_eq!(c.phone.as_deref(), Some("+8613812345678"));
        assert_eq!(c.locale, "zh-CN");
        let receipt = serde_json::to_value(ContactReceipt::new(&c)).unwrap();
        assert_eq!(receipt["email"], "Z***@example.com");
        assert_eq!(receipt["phone"], "+86*******5678");
    }

    #[test]
    fn bad_addresses_time_zones_and_consents_are_named() {
        let errs = broken(json!({"email": "not-an-address", "phone": "13812345678",
            "consent": {"email": true, "sms": "yes"}, "time_zone": "China/Beijing", "locale": "zh"}));
        for expected in [("email", "email"), ("phone", "e164"), ("consent.sms", "type"), ("time_zone", "time_zone")] {
            assert!(errs.contains(&(expected.0.to_owned(), expected.1)), "missing {expected:?} in {errs:?}");
        }
        let errs = broken(json!({"consent": {"email": true, "sms": true}, "time_zone": "UTC", "locale": "en"}));
        assert_eq!(
            errs,
            vec![("consent.email".to_owned(), "needs_address"), ("consent.sms".to_owned(), "needs_address")]
        );
        let nulls = json!({"email": null, "phone": null, "consent": {"email": true, "sms": true}, "time_zone": "UTC", "locale": "en"});
        assert_eq!(
            broken(nulls),
            vec![("consent.email".to_owned(), "needs_address"), ("consent.sms".to_owned(), "needs_address")],
            "a null address is no address"
        );
        assert!(broken(json!({"time_zone": "UTC", "locale": "en"})).contains(&("consent".to_owned(), "required")));
    }

    #[test]
    fn e_mail_and_phone_shapes() {
        assert!(check_email("e", "a@b.co").is_ok());
        for bad in ["a@b", "@b.com", "a b@c.com", "a@.com", "a@b..com", "a@b.com.", "a@@b.com"] {
            assert!(check_email("e", bad).is_err(), "{bad}");
        }
        // SES cannot send to them: refused up front, not accepted to fail at every follow-up.
        for non_ascii in ["张三@example.com", "zhang@例子.中国", "ｚhang@example.com"] {
            assert_eq!(check_email("e", non_ascii).unwrap_err().rule, "email_ascii", "{non_ascii}");
        }
        assert!(check_email("e", "zhang@xn--fsqu00a.xn--fiqs8s").is_ok(), "an IDN in its xn-- form");
        assert!(check_phone("p", "+14155550123").is_ok());
        for bad in ["+0123456789", "+12", "+86abc12345678", "008613812345678"] {
            assert!(check_phone("p", bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = ContactDetails::from_json("u".into(), &bytes, now());
        }

        #[test]
        fn masks_never_reveal_the_middle(local in "[a-z]{4,10}", digits in "[1-9][0-9]{9,12}") {
            let email = format!("{local}@q.cn");
            prop_assert!(!mask_email(&email).contains(&local[1..]));
            let phone = format!("+{digits}");
            let masked = mask_phone(&phone);
            prop_assert_eq!(masked.chars().count(), phone.chars().count());
            prop_assert!(masked.contains('*'));
        }
    }
}
