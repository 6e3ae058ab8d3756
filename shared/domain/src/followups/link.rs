//! Signed rating links (issue 5, step 2): `GET /r/{token}` shows the rating page, `POST /r/{token}`
//! saves the rating. A token names the conversation and an expiry, is signed with HMAC-SHA256 under
//! a key from configuration, and is single use (the store records its nonce when a rating is saved).
//!
//! Format: `[key id "."] base64url(conversation_id "." expires_epoch_s "." nonce) "." base64url(hmac)`,
//! short enough for an SMS. The key id names which of the configured keys signed it, so a new key
//! can sign while the old ones still verify the links they signed (rotation without breaking the
//! unsubscribe links of the last year).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingLink {
    pub conversation_id: crate::ids::ConversationId,
    pub expires_at: Timestamp,
    /// Unique per link; recorded when the link is used, so it works once.
    pub nonce: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    Forged,
    #[error("the link expired at {0}")]
    Expired(Timestamp),
}

/// What a link's token lets its holder do: rate the conversation (`/r/`, valid two weeks) or
/// unsubscribe its customer (`/u/`, valid more than a year). Each is signed for its purpose only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Rate,
    Unsubscribe,
    /// Answer a survey of the research panel (`/s/`).
    Survey,
}

/// Signs links with the first configured key and verifies them with any (the keys come from
/// configuration: Secrets Manager in AWS).
pub struct LinkSigner {
    /// (key id, key); `None`: the one key of a configuration without ids, whose tokens carry none.
    keys: Vec<(Option<String>, Vec<u8>)>,
}

/// The most keys a configuration may list (verifying tries only the one a token names).
const MAX_KEYS: usize = 8;

impl LinkSigner {
    /// From configuration: one key (`<key>`), or keys with ids, the signing one first
    /// (`2026b:<key>,2026a:<key>`; an entry without an id verifies the links signed before ids
    /// were used). Ids are 1–16 of `a-z 0-9 -`; a key has at least 32 bytes (a guessable key
    /// would let anyone rate anything) and no `:` or `,`. `None` when any of that is broken.
    pub fn new(config: &[u8]) -> Option<Self> {
        let keys = match std::str::from_utf8(config).ok().filter(|t| t.contains(':')) {
            None => vec![(None, config.to_vec())],
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| match entry.split_once(':') {
                    Some((id, key)) => {
                        let valid_id = (1..=16).contains(&id.len())
                            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                        valid_id.then(|| (Some(id.to_owned()), key.as_bytes().to_vec()))
                    }
                    None => Some((None, entry.as_bytes().to_vec())),
                })
                .collect::<Option<Vec<_>>>()?,
        };
        let mut ids: Vec<&Option<String>> = keys.iter().map(|(id, _)| id).collect();
        ids.sort();
        ids.dedup();
        let sound = !keys.is_empty()
            && keys.len() <= MAX_KEYS
            && ids.len() == keys.len()
            && keys.iter().all(|(_, key)| key.len() >= 32 && !key.contains(&b':') && !key.contains(&b','));
        sound.then_some(LinkSigner { keys })
    }

    fn mac(&self, key: &(Option<String>, Vec<u8>), purpose: LinkPurpose, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&key.1).expect("HMAC takes any key length");
        if let Some(id) = &key.0 {
            // The id is signed too: a token cannot be moved to another key's id.
            mac.update(id.as_bytes());
            mac.update(b"\0");
        }
        // A different message for the same payload: a token signed for one purpose does no other.
        match purpose {
            LinkPurpose::Rate => {}
            LinkPurpose::Unsubscribe => mac.update(b"unsubscribe\0"),
            LinkPurpose::Survey => mac.update(b"survey\0"),
        }
        mac.update(payload);
        mac
    }

    /// A rating link's token (`/r/{token}`).
    pub fn sign(&self, link: &RatingLink) -> String {
        self.sign_for(LinkPurpose::Rate, link)
    }

    pub fn sign_for(&self, purpose: LinkPurpose, link: &RatingLink) -> String {
        let key = &self.keys[0];
        let payload = format!("{}.{}.{}", link.conversation_id, link.expires_at.as_second(), link.nonce);
        let signature = self.mac(key, purpose, payload.as_bytes()).finalize().into_bytes();
        let id = key.0.as_ref().map(|id| format!("{id}.")).unwrap_or_default();
        format!("{id}{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(signature))
    }

    /// Checks a rating link's signature (in constant time) and expiry.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<RatingLink, LinkError> {
        self.verify_for(LinkPurpose::Rate, token, now)
    }

    pub fn verify_for(&self, purpose: LinkPurpose, token: &str, now: Timestamp) -> Result<RatingLink, LinkError> {
        let parts: Vec<&str> = token.split('.').collect();
        let (id, payload_b64, signature_b64) = match parts.as_slice() {
            [payload, signature] => (None, *payload, *signature),
            [id, payload, signature] => (Some(*id), *payload, *signature),
            _ => return Err(LinkError::Malformed),
        };
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| LinkError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| LinkError::Malformed)?;
        let key = self.keys.iter().find(|(key_id, _)| key_id.as_deref() == id).ok_or(LinkError::Forged)?;
        self.mac(key, purpose, &payload).verify_slice(&signature).map_err(|_| LinkError::Forged)?;
        let payload = String::from_utf8(payload).map_err(|_| LinkError::Malformed)?;
        let mut parts = payload.rsplitn(3, '.');
        let (nonce, expires, conversation_id) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(e), Some(c)) if !c.is_empty() && !n.is_empty() => (n, e, c),
            _ => return Err(LinkError::Malformed),
        };
        let expires_at =
            expires.parse::<i64>().ok().and_then(|s| Timestamp::from_second(s).ok()).ok_or(LinkError::Malformed)?;
        if now >= expires_at {
            return Err(LinkError::Expired(expires_at));
        }
        Ok(RatingLink { conversation_id: conversation_id.into(), expires_at, nonce: nonce.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn link() -> RatingLink {
        RatingLink {
            conversation_id: "c-1002".into(),
            expires_at: "2026-12-09T00:00:00Z".parse().unwrap(),
            nonce: "01M8A0".into(),
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let token = signer().sign(&link());
        assert!(token.len() < 100, "short enough for an SMS: {token}");
        let now: Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
        assert_eq!(signer().verify(&token, now).unwrap(), link());
        let later: Timestamp = "2026-12-09T00:00:00Z".parse().unwrap();
        assert_eq!(signer().verify(&token, later), Err(LinkError::Expired(link().expires_at)));
    }

    #[test]
    fn tampered_foreign_or_garbled_tokens_are_refused() {
        let now: Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
        let token = signer().sign(&link());
        let other = RatingLink { conversation_id: "c-9999".into(), ..link() };
        let (_, signature) = token.split_once('.').unwrap();
        let (forged_payload, _) =
            signer().sign(&other).split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
        assert_eq!(signer().verify(&format!("{forged_payload}.{signature}"), now), Err(LinkError::Forged));
        let stranger = LinkSigner::new(b"another key that is long enough!!").unwrap();
        assert_eq!(stranger.verify(&token, now), Err(LinkError::Forged));
        for garbage in ["", "abc", "a.b.c", "!!!.???"] {
            assert!(signer().verify(garbage, now).is_err(), "{garbage}");
        }
        assert!(LinkSigner::new(b"short").is_none());
    }

    const OLD: &str = "0123456789abcdef0123456789abcdef";
    const NEW: &str = "fedcba9876543210fedcba9876543210";

    /// Rotation: a new key signs, links signed by the old one (with or without an id) still
    /// verify for their lifetime, and a key that is taken out of the list stops them.
    #[test]
    fn a_new_key_signs_while_the_old_ones_still_verify_their_links() {
        let now: Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
        let before_ids = signer().sign(&link());
        let first = LinkSigner::new(format!("2026a:{OLD}").as_bytes()).unwrap();
        let signed_by_first = first.sign_for(LinkPurpose::Unsubscribe, &link());
        assert!(signed_by_first.starts_with("2026a."), "{signed_by_first}");

        let rotated = LinkSigner::new(format!("2026b:{NEW}, 2026a:{OLD},{OLD}").as_bytes()).unwrap();
        let fresh = rotated.sign(&link());
        assert!(fresh.starts_with("2026b.") && fresh.len() < 110, "{fresh}");
        assert_eq!(rotated.verify(&fresh, now).unwrap(), link());
        assert_eq!(rotated.verify_for(LinkPurpose::Unsubscribe, &signed_by_first, now).unwrap(), link());
        assert_eq!(rotated.verify(&before_ids, now).unwrap(), link(), "a link from before key ids");

        let retired = LinkSigner::new(format!("2026b:{NEW}").as_bytes()).unwrap();
        assert_eq!(retired.verify_for(LinkPurpose::Unsubscribe, &signed_by_first, now), Err(LinkError::Forged));
        assert_eq!(retired.verify(&before_ids, now), Err(LinkError::Forged));
        // The id is signed: a token moved to another id is forged.
        let moved = fresh.replacen("2026b.", "2026a.", 1);
        assert_eq!(rotated.verify(&moved, now), Err(LinkError::Forged));
    }

    #[test]
    fn key_lists_that_could_not_be_meant_are_refused() {
        for bad in [
            format!("2026a:{OLD},2026a:{NEW}"),
            format!("2026a:short,2026b:{NEW}"),
            format!("Bad_Id:{OLD}"),
            format!("{OLD},{NEW}"),
            ",".to_owned(),
            (0..9).map(|i| format!("k{i}:{OLD}")).collect::<Vec<_>>().join(","),
        ] {
            assert!(LinkSigner::new(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_token_string_is_answered_without_panicking(s in any::<String>()) {
            let _ = signer().verify(&s, Timestamp::UNIX_EPOCH);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the public link pages do. GET never writes (mail scanners open every link); only a POST
// from the page's form saves a rating or an unsubscribe.

use crate::conversations::Channel;
use crate::errors::StoreError;
use crate::language::Language;
use crate::ratings::RatingStore;
use crate::ratings::{RatingSubmission, SubmitRatingError, Submitted, submit_rating};

/// What the link pages need from storage besides ratings.
pub trait LinkStore {
    /// The customer and language of a conversation's follow-up, if it has one.
    fn follow_up_of(
        &self,
        conversation_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<(String, Option<String>)>, StoreError>> + Send;
    /// Records that the customer wants no more follow-ups, by any channel.
    fn opt_out(
        &self,
        customer_id: &str,
        now: Timestamp,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

/// The page a link shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkPage {
    /// The rating form (GET of a valid link).
    RatingForm,
    Thanks,
    AlreadyRated,
    UnsubscribeForm,
    Unsubscribed,
    Expired,
    /// Forged, malformed, or for a conversation without a follow-up.
    Invalid,
    /// The form was sent without a valid star count.
    BadForm,
}

/// What a link page's form sends (`application/x-www-form-urlencoded`, decoded by the HTTP glue);
/// other fields (the one-click unsubscribe's `List-Unsubscribe=One-Click`) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    pub stars: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// `GET` or `POST` of `/r/{token}` (rate) or `/u/{token}` (unsubscribe).
pub async fn open_link(
    signer: &LinkSigner,
    links: &impl LinkStore,
    ratings: &impl RatingStore,
    unsubscribe: bool,
    token: &str,
    form: Option<&LinkForm>,
    now: Timestamp,
) -> Result<(LinkPage, Language), StoreError> {
    let purpose = if unsubscribe { LinkPurpose::Unsubscribe } else { LinkPurpose::Rate };
    let link = match signer.verify_for(purpose, token, now) {
        Ok(link) => link,
        Err(LinkError::Expired(_)) => return Ok((LinkPage::Expired, Language::Zh)),
        Err(_) => return Ok((LinkPage::Invalid, Language::Zh)),
    };
    let Some((customer_id, locale)) = links.follow_up_of(&link.conversation_id).await? else {
        return Ok((LinkPage::Invalid, Language::Zh));
    };
    let language = locale.as_deref().and_then(Language::of_locale).unwrap_or(Language::Zh);
    let page = match (unsubscribe, form) {
        (true, None) => LinkPage::UnsubscribeForm,
        (true, Some(_)) => {
            links.opt_out(&customer_id, now).await?;
            LinkPage::Unsubscribed
        }
        (false, None) => match ratings.rating_of_conversation(&link.conversation_id).await? {
            Some(_) => LinkPage::AlreadyRated,
            None => LinkPage::RatingForm,
        },
        (false, Some(form)) => {
            let stars = form.stars.as_deref().and_then(|s| s.trim().parse::<u8>().ok()).filter(|s| (1..=5).contains(s));
            let Some(stars) = stars else { return Ok((LinkPage::BadForm, language)) };
            let comment = form
                .comment
                .as_deref()
                .map(crate::validate::clean_text)
                .filter(|c| !c.is_empty())
                .map(|c| c.chars().take(crate::validate::COMMENT_MAX_CHARS).collect());
            let submission = RatingSubmission {
                conversation_id: link.conversation_id.clone(),
                customer_id: customer_id.into(),
                stars,
                comment,
                channel: Channel::Web,
                served_by: None,
                locale: locale.clone(),
                issue_types: Vec::new(),
                order_value_minor: None,
                via_follow_up: true,
            };
            // The link's nonce is the idempotency key: sending the form twice saves one rating.
            match submit_rating(ratings, submission, Some(link.nonce.clone()), now).await {
                Ok(Submitted::Created(_) | Submitted::Replayed(_)) => LinkPage::Thanks,
                Err(SubmitRatingError::AlreadyRated { .. } | SubmitRatingError::IdempotencyKeyReused { .. }) => {
                    LinkPage::AlreadyRated
                }
                Err(SubmitRatingError::Store(e)) => return Err(e),
            }
        }
    };
    Ok((page, language))
}
