//! `feedback::lease` on a table item: `<prefix>lease_owner` and `<prefix>lease_until` (epoch
//! seconds, taken on the real clock) are set by a claim when the item is free for the lease
//! (unheld, lapsed, or the same owner's), and removed when the claim ends. Every change after the
//! claim is conditioned on the owner; a failed condition there is `StoreError::LeaseLost`.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use feedback::errors::StoreError;
use feedback::lease::Lease;

use super::{n, s, store_error};

/// The lease attributes of one claimable thing on an item (an item can hold several: a report
/// has one per digest channel).
pub(crate) struct LeaseAttrs {
    owner: String,
    until: String,
}

impl LeaseAttrs {
    pub(crate) fn new(prefix: &str) -> LeaseAttrs {
        LeaseAttrs { owner: format!("{prefix}lease_owner"), until: format!("{prefix}lease_until") }
    }

    /// The `SET` part that takes the lease (values from [`claim_values`]).
    pub(crate) fn set(&self) -> String {
        format!("{} = :lease_owner, {} = :lease_until", self.owner, self.until)
    }

    /// The condition that the item is free for the lease.
    pub(crate) fn free(&self) -> String {
        let (o, u) = (&self.owner, &self.until);
        format!("(attribute_not_exists({u}) OR {u} < :lease_now OR {o} = :lease_owner)")
    }

    /// The condition that the lease holds the item (value from [`owner_value`]).
    pub(crate) fn held(&self) -> String {
        format!("{} = :lease_owner", self.owner)
    }

    /// The `REMOVE` part that ends the lease.
    pub(crate) fn remove(&self) -> String {
        format!("{}, {}", self.owner, self.until)
    }
}

/// Update builders of single writes and of transactions alike.
pub(crate) trait Values: Sized {
    fn value(self, name: &str, value: AttributeValue) -> Self;
}

impl Values for UpdateItemFluentBuilder {
    fn value(self, name: &str, value: AttributeValue) -> Self {
        self.expression_attribute_values(name, value)
    }
}

impl Values for UpdateBuilder {
    fn value(self, name: &str, value: AttributeValue) -> Self {
        self.expression_attribute_values(name, value)
    }
}

/// The values of [`LeaseAttrs::set`] and [`LeaseAttrs::free`].
pub(crate) fn claim_values<B: Values>(update: B, lease: &Lease) -> B {
    update
        .value(":lease_owner", s(&lease.owner))
        .value(":lease_until", n(lease.until.as_second()))
        .value(":lease_now", n(lease.taken_at.as_second()))
}

/// The value of [`LeaseAttrs::held`].
pub(crate) fn owner_value<B: Values>(update: B, lease: &Lease) -> B {
    update.value(":lease_owner", s(&lease.owner))
}

/// A failed write after a claim: a failed condition means another owner holds the item now.
pub(crate) fn lost_or_error<E, R>(err: SdkError<E, R>, what: &str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let lost = match err.code() {
        Some("ConditionalCheckFailedException") => true,
        Some("TransactionCanceledException") => err.message().is_some_and(|m| m.contains("ConditionalCheckFailed")),
        _ => false,
    };
    if lost { StoreError::LeaseLost(what.to_owned()) } else { store_error(err) }
}
