//! Who may call the intake API: server-to-server callers (the chat platform, the storefront
//! backend, the CRM), each holding its own API key. Only SHA-256 digests of the keys are
//! configured, so the deployment's configuration never holds a usable secret, and keys rotate by
//! listing the old and the new digest under the same caller name for a while.

use sha2::{Digest, Sha256};

/// `CALLER_KEYS`: comma-separated `name:sha256hex` entries, e.g.
/// `chat-platform:9f86d08…,crm:60303ae…`.
#[derive(Debug, Clone, Default)]
pub struct CallerKeys {
    entries: Vec<(String, [u8; 32])>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no credentials were presented")]
    Missing,
    #[error("the credentials are not valid")]
    Denied,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("CALLER_KEYS entry {0} is not `name:<64 hex digits>`")]
pub struct BadCallerKeys(usize);

impl CallerKeys {
    pub fn parse(config: &str) -> Result<Self, BadCallerKeys> {
        let mut entries = Vec::new();
        for (i, entry) in config.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let (name, digest) = entry.split_once(':').ok_or(BadCallerKeys(i + 1))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(digest.trim(), &mut bytes).map_err(|_| BadCallerKeys(i + 1))?;
            if name.trim().is_empty() {
                return Err(BadCallerKeys(i + 1));
            }
            entries.push((name.trim().to_owned(), bytes));
        }
        Ok(CallerKeys { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks an `Authorization: Bearer <key>` header value and names the caller.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<&str, AuthError> {
        let header = authorization.map(str::trim).filter(|h| !h.is_empty()).ok_or(AuthError::Missing)?;
        let key = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .filter(|key| !key.is_empty())
            .ok_or(AuthError::Denied)?;
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Compare against every entry without early exit so timing does not reveal which matched.
        let mut found = None;
        for (name, digest) in &self.entries {
            let diff = digest.iter().zip(presented.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found.ok_or(AuthError::Denied)
    }
}

/// The digest to put in `CALLER_KEYS` for a key.
pub fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_key_names_its_caller_and_anything_else_is_refused() {
        let keys = CallerKeys::parse(&format!("chat:{}, crm:{}", key_digest("k1"), key_digest("k2"))).unwrap();
        assert_eq!(keys.authenticate(Some("Bearer k1")), Ok("chat"));
        assert_eq!(keys.authenticate(Some("bearer  k2 ")), Ok("crm"));
        assert_eq!(keys.authenticate(None), Err(AuthError::Missing));
        assert_eq!(keys.authenticate(Some("  ")), Err(AuthError::Missing));
        assert_eq!(keys.authenticate(Some("Bearer k3")), Err(AuthError::Denied));
        assert_eq!(keys.authenticate(Some("Basic k1")), Err(AuthError::Denied));
        assert_eq!(keys.authenticate(Some("k1")), Err(AuthError::Denied));
        assert_eq!(keys.authenticate(Some(&format!("Bearer {}", key_digest("k1")))), Err(AuthError::Denied));
    }

    #[test]
    fn malformed_configuration_is_reported_by_position() {
        assert_eq!(CallerKeys::parse("chat:abc").unwrap_err(), BadCallerKeys(1));
        assert!(CallerKeys::parse(&format!("a:{},nohash", key_digest("x"))).is_err());
        assert!(CallerKeys::parse("").unwrap().is_empty());
        assert!(CallerKeys::parse("").unwrap().authenticate(Some("Bearer x")).is_err());
    }
}
