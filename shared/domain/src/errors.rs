//! Failures of the outside world (storage, notification), split by what the caller can do about them.

/// Storage failures, split by what the caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, network: worth retrying (HTTP 503, Lambda retry).
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// An item we cannot read back, a permission or configuration error: retrying will not help.
    #[error("storage failed: {0}")]
    Failed(String),
    /// A claim's lease lapsed and another owner took the item: this owner's change was not written
    /// (see `crate::lease`).
    #[error("the claim on {0} was taken over by another run")]
    LeaseLost(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Notification failures, split like `StoreError`.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification service is unavailable: {0}")]
    Unavailable(String),
    #[error("notification failed: {0}")]
    Failed(String),
}
