use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::lease::{LeaseAttrs, claim_values, lost_or_error, owner_value};
use super::{Item, iso, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::followups::{CustomerFacts, DueFollowUp, FollowUpChannel, FollowUpKind, FollowUpStore};
use feedback::insights::weekly::AggregateDelta;
use feedback::lease::Lease;
use feedback::time::IsoWeek;

/// `FollowUpStore` on the feedback table: the `FOLLOWUP` item of each conversation moves through
/// due → sending (claimed, with a lease) → due again as a reminder → sent; or deferred (due later),
/// skipped (with a reason) or failed (after the attempts). Only due and sending items are on the
/// due-hour index. The customer's `CUST#<id>` partition holds `CONTACT`, `OPTOUT` and `FATIGUE`
/// (when they were last sent a follow-up).
#[derive(Clone)]
pub struct DynamoFollowUpStore {
    client: Client,
    table: String,
    /// Sent follow-ups are counted into the week's aggregate (the report's follow-up funnel).
    weeks: feedback::config::WeekSettings,
}

impl DynamoFollowUpStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), weeks: Default::default() }
    }

    /// Counts sent follow-ups into the weeks and shards the analysis uses (default: Asia/Shanghai, 8).
    pub fn with_weeks(mut self, weeks: feedback::config::WeekSettings) -> Self {
        self.weeks = weeks;
        self
    }

    /// `ADD <counter> 1` on the week's `_all` aggregate of the customer's shard, in the same
    /// transaction as the state change it counts (so a retry never counts twice).
    fn funnel_counter(
        &self,
        customer_id: &str,
        counters: &[&'static str],
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let week = IsoWeek::of(now, &self.weeks.shop_time_zone).to_string();
        let shard = feedback::insights::shard_of(customer_id, self.weeks.aggregate_shards);
        let delta = AggregateDelta::all(&week, shard, counters.iter().map(|c| (*c, 1)).collect());
        Ok(TransactWriteItem::builder().update(super::aggregates::update(&self.table, &delta, now)?).build())
    }

    fn update(&self, f: &DueFollowUp) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(&f.conversation_id), keys::FOLLOW_UP)))
            .expression_attribute_names("#state", "state")
    }
}

/// A follow-up queued outside a conversation's close (an apology, a survey invitation), in the
/// partition of its own `key`: due at `due_at`, found by the run through its due-hour bucket, kept
/// as long as its unsubscribe link works.
pub(crate) fn queued_item(
    queue_key: &str,
    customer_id: &str,
    locale: Option<&str>,
    kind: &str,
    due_at: Timestamp,
    now: Timestamp,
) -> Item {
    let mut item = key(keys::conversation(queue_key), keys::FOLLOW_UP);
    item.insert("entity".into(), s("follow_up"));
    item.insert("conversation_id".into(), s(queue_key));
    item.insert("customer_id".into(), s(customer_id));
    if let Some(locale) = locale {
        item.insert("locale".into(), s(locale));
    }
    item.insert("state".into(), s("due"));
    item.insert("kind".into(), s(kind));
    item.insert("due_at".into(), s(iso(due_at)));
    item.insert("attempts".into(), n(0));
    item.insert("gsi1pk".into(), s(keys::follow_up_bucket(due_at, now)));
    item.insert("gsi1sk".into(), s(keys::follow_up_due_sort(due_at, queue_key)));
    item.insert("expires_at".into(), n(super::expiry(now, feedback::followups::UNSUBSCRIBE_LINK_VALID_DAYS + 31)));
    item
}

/// The parts of a `FOLLOWUP` item a run reads (serde_dynamo; other attributes are ignored).
#[derive(serde::Deserialize)]
struct FollowUpRead {
    conversation_id: String,
    customer_id: String,
    locale: Option<String>,
    due_at: String,
    kind: Option<String>,
    #[serde(default)]
    attempts: u32,
    held_since: Option<String>,
    /// An apology's order and its new promise.
    order_id: Option<String>,
    promised_delivery_at: Option<String>,
    #[serde(default)]
    only_if_late: bool,
    #[serde(default)]
    unhappy: bool,
}

fn due_from_item(item: &Item) -> Option<DueFollowUp> {
    let f: FollowUpRead = serde_dynamo::from_item(item.clone()).ok()?;
    // A kind this code does not know (written by a newer version, then rolled back) is left
    // alone rather than sent as a rating request.
    if !matches!(f.kind.as_deref(), None | Some("first" | "reminder" | "apology" | "survey" | "check_in")) {
        tracing::warn!(conversation_id = %f.conversation_id, kind = ?f.kind, "follow-up of an unknown kind left alone");
        return None;
    }
    Some(DueFollowUp {
        conversation_id: f.conversation_id.into(),
        customer_id: f.customer_id.into(),
        locale: f.locale,
        due_at: f.due_at.parse().ok()?,
        kind: match f.kind.as_deref() {
            Some("reminder") => FollowUpKind::Reminder,
            Some("apology") => FollowUpKind::Apology,
            Some("survey") => FollowUpKind::Survey,
            _ => FollowUpKind::First,
        },
        attempts: f.attempts,
        held_since: f.held_since.and_then(|t| t.parse().ok()),
        apology: f.order_id.map(|order_id| feedback::followups::ApologyFor {
            order_id,
            promised_delivery_at: f.promised_delivery_at.and_then(|t| t.parse().ok()),
            only_if_late: f.only_if_late,
        }),
        unhappy: f.unhappy,
    })
}

impl DynamoFollowUpStore {
    async fn due_in_bucket(&self, bucket: String, now: Timestamp) -> Result<Vec<DueFollowUp>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :bucket AND gsi1sk <= :now")
                .expression_attribute_values(":bucket", s(bucket.clone()))
                // Sort keys are `<due_at>#<conversation>`: "~" sorts after any conversation id.
                .expression_attribute_values(":now", s(format!("{}~", iso(now))))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            out.extend(page.items().iter().filter_map(due_from_item));
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

impl FollowUpStore for DynamoFollowUpStore {
    async fn due(&self, now: Timestamp, lookback_hours: u32) -> Result<Vec<DueFollowUp>, StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        // One query per due hour, 8 at a time: a run reads ~73 small partitions, not the table.
        let buckets: Vec<_> = (0..=i64::from(lookback_hours))
            .map(|back| keys::follow_up_due_hour(now - jiff::SignedDuration::from_hours(back)))
            .chain([keys::FOLLOW_UP_LATE.to_owned()])
            .map(|bucket| self.due_in_bucket(bucket, now))
            .collect();
        let pages: Vec<Vec<DueFollowUp>> = futures_util::stream::iter(buckets).buffered(8).try_collect().await?;
        let mut out: Vec<DueFollowUp> = pages.into_iter().flatten().collect();
        out.sort_by_key(|f| f.due_at);
        Ok(out)
    }

    async fn claim(&self, f: &DueFollowUp, lease: &Lease) -> Result<bool, StoreError> {
        let attrs = lease_attrs();
        let update = self
            .update(f)
            .update_expression(format!("SET #state = :sending, {}, claimed_at = :claimed_at", attrs.set()))
            .condition_expression(format!(
                "(#state = :due AND due_at = :seen) OR (#state = :sending AND {})",
                attrs.free()
            ))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":due", s("due"))
            .expression_attribute_values(":seen", s(iso(f.due_at)))
            .expression_attribute_values(":claimed_at", s(iso(lease.taken_at)));
        let claimed = claim_values(update, lease).send().await;
        match claimed {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn customer_facts(&self, customer_id: &str) -> Result<Option<CustomerFacts>, StoreError> {
        let customer = super::customer::read_customer(&self.client, &self.table, customer_id).await?;
        let Some(contact) = customer.contact else { return Ok(None) };
        let (optout, profile) = (customer.opted_out, customer.profile.map(|(p, _)| p));
        // An address that bounced for good or complained is not mailed again (SMS may go).
        let suppressed = match &contact.email {
            Some(address) => {
                let digest = feedback::followups::contacts::address_digest(address);
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(super::key(keys::suppressed_email(&digest), keys::SUPPRESSED_EMAIL)))
                    .projection_expression("pk")
                    .send()
                    .await
                    .map_err(store_error)?
                    .item
                    .is_some()
            }
            None => false,
        };
        Ok(Some(CustomerFacts {
            email: contact.email,
            phone: contact.phone,
            consent_email: contact.consent.email,
            consent_sms: contact.consent.sms,
            consent_research: contact.consent.research,
            opted_out_email: suppressed || optout.email,
            opted_out_sms: optout.sms,
            time_zone: contact.time_zone,
            last_follow_up_at: customer.last_follow_up_at,
            profile,
        }))
    }

    async fn is_rated(&self, conversation_id: &str) -> Result<bool, StoreError> {
        super::exists(&self.client, &self.table, keys::conversation(conversation_id), keys::RATING).await
    }

    async fn mark_sent(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        channel: FollowUpChannel,
        message_id: &str,
        now: Timestamp,
        reminder_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let channel = match channel {
            FollowUpChannel::Email => "email",
            FollowUpChannel::Sms => "sms",
        };
        let sent_field = if f.kind == FollowUpKind::Reminder { "reminder" } else { "first" };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(&f.conversation_id), keys::FOLLOW_UP)))
            .condition_expression(held())
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":now", s(iso(now)))
            .expression_attribute_values(":channel", s(channel))
            .expression_attribute_values(":message", s(message_id));
        let sent =
            format!("{sent_field}_sent_at = :now, {sent_field}_channel = :channel, {sent_field}_message_id = :message");
        update = owner_value(update, lease);
        update = match reminder_at {
            Some(at) => update
                .update_expression(format!(
                    "SET #state = :due, kind = :reminder, due_at = :at, attempts = :zero, gsi1pk = :g1, gsi1sk = :g2, {sent} \
                     REMOVE {}",
                    lease_attrs().remove()
                ))
                .expression_attribute_values(":due", s("due"))
                .expression_attribute_values(":reminder", s("reminder"))
                .expression_attribute_values(":at", s(iso(at)))
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":g1", s(keys::follow_up_due_hour(at)))
                .expression_attribute_values(":g2", s(keys::follow_up_due_sort(at, &f.conversation_id))),
            None => update
                .update_expression(format!("SET #state = :sent, {sent} REMOVE {}, gsi1pk, gsi1sk", lease_attrs().remove()))
                .expression_attribute_values(":sent", s("sent")),
        };
        let fatigue = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer(&f.customer_id), keys::FATIGUE)))
            .update_expression("SET last_follow_up_at = :now, last_conversation_id = :conv")
            .expression_attribute_values(":now", s(iso(now)))
            .expression_attribute_values(":conv", s(f.conversation_id.as_str()));
        let items = vec![
            TransactWriteItem::builder().update(update.build().map_err(|e| StoreError::Failed(e.to_string()))?).build(),
            TransactWriteItem::builder()
                .update(fatigue.build().map_err(|e| StoreError::Failed(e.to_string()))?)
                .build(),
            self.funnel_counter(&f.customer_id, f.kind.sent_counters(), now)?,
        ];
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| lost_or_error(e, &lost(f)))?;
        Ok(())
    }

    async fn defer(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        until: Timestamp,
        held_since: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let hold = if held_since.is_some() { ", held_since = if_not_exists(held_since, :held)" } else { "" };
        let update = self
            .update(f)
            .update_expression(format!(
                "SET #state = :due, due_at = :until, gsi1pk = :g1, gsi1sk = :g2{hold} REMOVE {}",
                lease_attrs().remove()
            ))
            .condition_expression(held())
            .expression_attribute_values(":due", s("due"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":until", s(iso(until)))
            .expression_attribute_values(":g1", s(keys::follow_up_due_hour(until)))
            .expression_attribute_values(":g2", s(keys::follow_up_due_sort(until, &f.conversation_id)));
        let update = match held_since {
            Some(since) => update.expression_attribute_values(":held", s(iso(since))),
            None => update,
        };
        owner_value(update, lease).send().await.map_err(|e| lost_or_error(e, &lost(f)))?;
        Ok(())
    }

    async fn skip(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        reason: &'static str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let update = self
            .update(f)
            .update_expression(format!(
                "SET #state = :skipped, skip_reason = :reason, skipped_at = :now REMOVE {}, gsi1pk, gsi1sk",
                lease_attrs().remove()
            ))
            .condition_expression(held())
            .expression_attribute_values(":skipped", s("skipped"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(iso(now)));
        owner_value(update, lease).send().await.map_err(|e| lost_or_error(e, &lost(f)))?;
        Ok(())
    }

    async fn release(
        &self,
        f: &DueFollowUp,
        lease: &Lease,
        retry_at: Option<Timestamp>,
        failure: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let update = self
            .update(f)
            .condition_expression(held())
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":now", s(iso(now)))
            .expression_attribute_values(":failure", s(failure))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        let update = match retry_at {
            Some(at) => update
                .update_expression(format!(
                    "SET #state = :due, due_at = :at, gsi1pk = :g1, gsi1sk = :g2, last_failure_at = :now, last_failure = :failure \
                     ADD attempts :one REMOVE {}",
                    lease_attrs().remove()
                ))
                .expression_attribute_values(":due", s("due"))
                .expression_attribute_values(":at", s(iso(at)))
                .expression_attribute_values(":g1", s(keys::follow_up_due_hour(at)))
                .expression_attribute_values(":g2", s(keys::follow_up_due_sort(at, &f.conversation_id))),
            None => update
                .update_expression(format!(
                    "SET #state = :failed, last_failure_at = :now, last_failure = :failure ADD attempts :one REMOVE {}, gsi1pk, gsi1sk",
                    lease_attrs().remove()
                ))
                .expression_attribute_values(":failed", s("failed")),
        };
        owner_value(update, lease).send().await.map_err(|e| lost_or_error(e, &lost(f)))?;
        Ok(())
    }
}

/// A follow-up's lease attributes (`lease_owner`, `lease_until`).
fn lease_attrs() -> LeaseAttrs {
    LeaseAttrs::new("")
}

/// Every change after the claim: still sending, under this run's lease.
fn held() -> String {
    format!("#state = :sending AND {}", lease_attrs().held())
}

fn lost(f: &DueFollowUp) -> String {
    format!("the follow-up of {}", f.conversation_id)
}

impl feedback::followups::link::LinkStore for DynamoFollowUpStore {
    async fn follow_up_of(&self, conversation_id: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::conversation(conversation_id), keys::FOLLOW_UP)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        /// What a link page needs of the follow-up.
        #[derive(serde::Deserialize)]
        struct LinkRead {
            customer_id: String,
            locale: Option<String>,
        }
        Ok(out.item.and_then(|i| serde_dynamo::from_item::<_, LinkRead>(i).ok()).map(|f| (f.customer_id, f.locale)))
    }

    async fn opt_out(&self, customer_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::customer(customer_id), keys::OPT_OUT)))
            .update_expression("SET email = :yes, sms = :yes, opted_out_at = if_not_exists(opted_out_at, :now)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(iso(now)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod kinds {
    use super::*;

    #[test]
    fn a_queued_item_reads_back_and_an_unknown_kind_is_left_alone() {
        let now: Timestamp = "2026-12-01T02:00:00Z".parse().unwrap();
        let survey = due_from_item(&queued_item("~survey~s~u-1", "u-1", Some("en"), "survey", now, now)).unwrap();
        assert_eq!(
            (survey.kind, survey.customer_id.as_str(), survey.locale.as_deref()),
            (FollowUpKind::Survey, "u-1", Some("en"))
        );
        assert!(
            due_from_item(&queued_item("~x~1", "u-1", None, "teleport", now, now)).is_none(),
            "never sent as a rating request"
        );
    }
}
