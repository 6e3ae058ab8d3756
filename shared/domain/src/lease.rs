//! Claims on work that must happen once: a staff alert, a follow-up, a weekly digest (and later
//! proactive messages). One protocol for all of them: **claim → act → finish**.
//!
//! - A claim is a lease written on the item: who holds it (`owner`) and until when (`until`).
//! - Leases are timed on the real clock ([`Lease::take`]), never on a schedule's time: a run that
//!   starts late (a delayed 10:00 retry at 10:20) still holds its claim against a later run (10:15).
//! - Each claim carries an owner token, new for every invocation ([`run_owner`], [`request_owner`]),
//!   and every later change of the item (sent, skipped, deferred, released) is conditioned on it:
//!   a run whose lease lapsed and was taken over cannot overwrite the new holder's work; it gets
//!   [`crate::errors::StoreError::LeaseLost`]. Two invocations at once (a duplicate delivery of
//!   one schedule) are two owners, so one of them acts.
//! - A lease lasts as long as the invocation that took it can live (the function's timeout and a
//!   little clock skew), so by the time the scheduler retries a run that died mid-send (Lambda's
//!   retries come a minute or more after the failure) its claims have lapsed and the retry finishes
//!   the job. Work that failed cleanly is released at once, with the failure kept on the item.
//! - One item's failure is recorded on that item; a run goes on with the rest and fails (for the
//!   scheduler to retry) only after it has done everything it could.
//!
//! The duplicate window that remains is written once, in ARCHITECTURE.md ("Exactly once").

use std::future::Future;

use crate::Timestamp;
use crate::errors::StoreError;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the lease and must act, then finish.
    Claimed,
    /// Done before (sent, or finished for good): nothing to do.
    AlreadySent,
    /// Another owner holds an unexpired lease.
    InProgress,
}

/// How a claim ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish<'a> {
    /// Done for good: the provider's message id.
    Sent(&'a str),
    /// Not done: the item is free again at once for the next attempt; `failure` (why) is kept on it.
    Released { failure: Option<&'a str> },
}

/// A lease as the stores write it: `owner` holds the item from `taken_at` until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    /// When the claim is made, on the real clock: a lease that ended before this is free.
    pub taken_at: Timestamp,
    pub until: Timestamp,
}

impl Lease {
    /// A lease for `owner` of `seconds` from now, on the real clock.
    pub fn take(owner: impl Into<String>, seconds: i64) -> Lease {
        Lease::at(owner, clock::now(), seconds)
    }

    /// A lease taken at `taken_at` (tests and fakes; production code uses [`Lease::take`]).
    pub fn at(owner: impl Into<String>, taken_at: Timestamp, seconds: i64) -> Lease {
        let until = taken_at.checked_add(jiff::SignedDuration::from_secs(seconds.max(1))).unwrap_or(taken_at);
        Lease { owner: owner.into(), taken_at, until }
    }

    /// Whether this lease may take an item whose current holder is `held` (owner, until): a free
    /// item, a lapsed lease, or this owner's own.
    pub fn may_take(&self, held: Option<(&str, Timestamp)>) -> bool {
        match held {
            None => true,
            Some((owner, until)) => owner == self.owner || until < self.taken_at,
        }
    }
}

/// The real clock. With the `test-clock` feature (the fakes' tests only), tests can move it on, so
/// a week of scheduled runs sees leases lapse as they would in a real week.
pub mod clock {
    use crate::Timestamp;

    #[cfg(feature = "test-clock")]
    static OFFSET_SECONDS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

    #[cfg(not(feature = "test-clock"))]
    pub fn now() -> Timestamp {
        Timestamp::now()
    }

    #[cfg(feature = "test-clock")]
    pub fn now() -> Timestamp {
        Timestamp::now() + jiff::SignedDuration::from_secs(OFFSET_SECONDS.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Moves the clock so that it reads `at` now (tests only).
    #[cfg(feature = "test-clock")]
    pub fn set(at: Timestamp) {
        let offset = at.as_second() - Timestamp::now().as_second();
        OFFSET_SECONDS.store(offset, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The owner of a scheduled run's claims: the job, the time it was scheduled for (so the item
/// says which run holds it) and a nonce (so two invocations of one schedule are two owners).
pub fn run_owner(job: &str, scheduled: Timestamp) -> String {
    format!("{job}@{scheduled}#{}", ulid::Ulid::new())
}

/// The owner of a request's claims: new for every request.
pub fn request_owner() -> String {
    format!("request@{}", ulid::Ulid::new())
}

/// How often a "sent" mark is retried within its lease before the invocation gives up.
pub const MARK_ATTEMPTS: u32 = 4;

/// Writes a "sent" mark, retrying retryable failures while the lease holds: the mark must land,
/// or the next owner sends again (the one duplicate window), so this narrows that window to a
/// storage outage longer than [`MARK_ATTEMPTS`] tries.
pub async fn mark_sent<F, Fut>(mut write: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut attempt = 0;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() && attempt < MARK_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Work that is claimed, done and finished once: a staff alert, a digest on one channel.
pub trait Claimable {
    fn claim(&self, lease: &Lease) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    fn finish(&self, lease: &Lease, finish: Finish<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What [`once`] came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Once<E> {
    /// Done now: the provider's message id.
    Sent(String),
    AlreadySent,
    /// Another owner holds the claim.
    InProgress,
    /// The work failed; the claim was released with the failure recorded on the item.
    Failed(E),
}

/// Claim → act → finish: `act` runs only under this lease, and its result ends the claim (sent, or
/// released with the failure kept on the item so the next attempt may take it at once).
pub async fn once<C, E, F, Fut>(item: &C, lease: &Lease, act: F) -> Result<Once<E>, StoreError>
where
    C: Claimable,
    E: std::fmt::Display,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<String, E>>,
{
    match item.claim(lease).await? {
        Claim::AlreadySent => return Ok(Once::AlreadySent),
        Claim::InProgress => return Ok(Once::InProgress),
        Claim::Claimed => {}
    }
    match act().await {
        Ok(message_id) => {
            mark_sent(|| item.finish(lease, Finish::Sent(&message_id))).await?;
            Ok(Once::Sent(message_id))
        }
        Err(e) => {
            let failure = e.to_string();
            if let Err(release) = item.finish(lease, Finish::Released { failure: Some(&failure) }).await {
                tracing::warn!(error = %release, "claim not released; it lapses with its lease");
            }
            Ok(Once::Failed(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_lease_is_free_when_unheld_lapsed_or_its_own() {
        let lease = Lease::at("weekly-digest@2026-11-23T01:00:00Z#1", t("2026-11-23T01:20:00Z"), 70);
        assert_eq!(lease.until, t("2026-11-23T01:21:10Z"));
        assert!(lease.may_take(None));
        assert!(lease.may_take(Some(("other", t("2026-11-23T01:19:59Z")))), "lapsed");
        assert!(!lease.may_take(Some(("other", t("2026-11-23T01:21:00Z")))), "held by another");
        assert!(lease.may_take(Some(("weekly-digest@2026-11-23T01:00:00Z#1", t("2026-11-23T01:21:00Z")))), "its own");
    }

    #[test]
    fn every_invocation_is_its_own_owner_even_of_one_schedule() {
        let at = t("2026-11-23T01:00:00Z");
        assert_ne!(run_owner("weekly-digest", at), run_owner("weekly-digest", at));
        assert!(run_owner("weekly-digest", at).starts_with("weekly-digest@2026-11-23T01:00:00Z#"));
        assert_ne!(request_owner(), request_owner());
    }
}
