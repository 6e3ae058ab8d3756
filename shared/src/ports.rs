//! Ports: what the rules need from the outside world. Adapters for AWS live in `crate::dynamo`.

use std::future::Future;

use crate::rating::Rating;

/// Storage failures, split by what the caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, network: worth retrying (HTTP 503, Lambda retry).
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// An item we cannot read back, a permission or configuration error: retrying will not help.
    #[error("storage failed: {0}")]
    Failed(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub trait RatingStore {
    /// Stores `rating` if its conversation has no rating yet (`Ok(None)`); otherwise writes nothing
    /// and returns the rating already stored (`Ok(Some(existing))`).
    fn insert_rating(&self, rating: &Rating) -> impl Future<Output = Result<Option<Rating>, StoreError>> + Send;

    fn rating_of_conversation(
        &self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Option<Rating>, StoreError>> + Send;
}
