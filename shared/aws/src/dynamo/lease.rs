//! `feedback::lease` on a table item: `<prefix>lease_owner` and `<prefix>lease_until` (epoch
//! seconds, taken on the real clock) are set by a claim when the item is free for the lease
//! (unheld, lapsed, or the same owner's), and removed when the claim ends. Every change after the
//! claim is conditioned on the owner; a failed condition there is `StoreError::LeaseLost`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::lease::{Claim, Finish, Lease};

use super::{Item, iso, n, s, store_error};

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

/// Something sent once from an existing item (a trigger's staff alert, a report's digest on one
/// channel): its lease attributes, where its result goes (`sent_at`, `message_id`) and, when it
/// fails, `<prefix>failed_at`, `<prefix>failure` and the count `<prefix>failures`.
pub(crate) struct SentOnce {
    prefix: String,
    attrs: LeaseAttrs,
    sent_at: String,
    message_id: String,
}

impl SentOnce {
    pub(crate) fn new(prefix: &str, sent_at: &str, message_id: &str) -> SentOnce {
        SentOnce {
            prefix: prefix.to_owned(),
            attrs: LeaseAttrs::new(prefix),
            sent_at: sent_at.to_owned(),
            message_id: message_id.to_owned(),
        }
    }

    /// Claims it on the item at `key` for `lease`; `missing` answers when the item does not exist.
    pub(crate) async fn claim(
        &self,
        client: &Client,
        table: &str,
        key: Item,
        lease: &Lease,
        missing: impl FnOnce() -> Result<Claim, StoreError>,
    ) -> Result<Claim, StoreError> {
        let update = client
            .update_item()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(format!("SET {}", self.attrs.set()))
            .condition_expression(format!(
                "attribute_exists(pk) AND attribute_not_exists({}) AND {}",
                self.sent_at,
                self.attrs.free()
            ))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match claim_values(update, lease).send().await {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    None => missing(),
                    Some(old) if old.contains_key(&self.sent_at) => Ok(Claim::AlreadySent),
                    Some(_) => Ok(Claim::InProgress),
                },
                _ => Err(store_error(e)),
            },
        }
    }

    /// Ends `lease`'s claim on the item at `key` (`LeaseLost`, naming the item, if it no longer
    /// holds).
    pub(crate) async fn finish(
        &self,
        client: &Client,
        table: &str,
        key: Item,
        lease: &Lease,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let name = |k: &str| key.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let what = format!("{} {}", name("pk"), name("sk"));
        let update = client
            .update_item()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression(self.attrs.held())
            .expression_attribute_values(":now", s(iso(now)));
        let p = &self.prefix;
        let update = match finish {
            Finish::Sent(id) => update
                .update_expression(format!(
                    "SET {} = :now, {} = :id REMOVE {}",
                    self.sent_at,
                    self.message_id,
                    self.attrs.remove()
                ))
                .expression_attribute_values(":id", s(id)),
            Finish::Released { failure } => update
                .update_expression(format!(
                    "SET {p}failed_at = :now, {p}failure = :failure ADD {p}failures :one REMOVE {}",
                    self.attrs.remove()
                ))
                .expression_attribute_values(":failure", s(failure.unwrap_or("released")))
                .expression_attribute_values(":one", n(1)),
        };
        owner_value(update, lease).send().await.map_err(|e| lost_or_error(e, &what))?;
        Ok(())
    }
}
