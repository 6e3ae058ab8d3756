//! Claims on work that must happen once (staff alerts, follow-ups, digests).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertClaim {
    /// This caller holds the claim until the lease ends and must send, then finish.
    Claimed,
    AlreadySent,
    /// Another request holds an unexpired claim.
    InProgress,
}
