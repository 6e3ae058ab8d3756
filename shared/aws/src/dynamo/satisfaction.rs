//! Estimated satisfaction in the weekly aggregates (what counts is decided in `weekly`:
//! `estimate_counters`, `pair_counters`): each closed conversation's estimate counted once into
//! the week it closed in (marker `satisfaction_week` on its `META`, with the expected stars as
//! counted), and each conversation that has both an estimate and the customer's stars counted once
//! as a pair (marker `satisfaction_paired`), by whichever comes second: the close or the rating's
//! analysis.
//!
//! Each count is one transaction: the marker (conditional: written once) and the `ADD`s on the
//! `_all` aggregate of the customer's shard. An unrated close also checks that the rating is still
//! absent, so a rating analysed meanwhile makes the close count again, now as a pair. A run that
//! dies between the close (or the rating's analysis) and its count loses that one count; it never
//! counts twice.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};

use super::{Item, built, get_n, get_s, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::analysis::satisfaction::Satisfaction;
use feedback::config::WeekSettings;
use feedback::errors::StoreError;
use feedback::insights::weekly::{AggregateDelta, estimate_counters, estimate_delta, pair_counters};

/// `delta` added to its aggregate, as a transaction item.
fn aggregate_add(table: &str, delta: &AggregateDelta, now: Timestamp) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder().update(super::aggregates::update(table, delta, now)?).build())
}

/// Runs a marker + counters transaction. `Ok(false)`: a condition did not hold (counted already,
/// or the world changed under us); any other cancellation (a conflicting transaction on the
/// shard's counters, throttling) is worth retrying.
async fn transact_once(client: &Client, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
    match client.transact_write_items().set_transact_items(Some(items)).send().await {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                let codes: Vec<Option<&str>> = t.cancellation_reasons().iter().map(|r| r.code()).collect();
                if codes.iter().all(|c| matches!(c, None | Some("None" | "ConditionalCheckFailed"))) {
                    Ok(false)
                } else {
                    Err(StoreError::Unavailable(format!("transaction cancelled: {codes:?}")))
                }
            }
            _ => Err(store_error(e)),
        },
    }
}

fn meta_update(
    table: &str,
    conversation_id: &str,
    set: &str,
    condition: &str,
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
        .update_expression(set)
        .condition_expression(condition);
    for (name, value) in values {
        update = update.expression_attribute_values(name, value);
    }
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// One item of the conversation's partition, read consistently.
async fn conversation_item(
    client: &Client,
    table: &str,
    conversation_id: &str,
    sk: &str,
) -> Result<Option<Item>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(keys::conversation(conversation_id), sk)))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    Ok(out.item)
}

async fn rating_stars(client: &Client, table: &str, conversation_id: &str) -> Result<Option<u8>, StoreError> {
    let rating = conversation_item(client, table, conversation_id, keys::RATING).await?;
    Ok(rating.as_ref().and_then(|i| get_n::<u8>(i, "stars")))
}

/// Counts a closed conversation's estimate into the week it closed in, once; with the pair when
/// the conversation is rated already. `meta`: the conversation as the close left it.
pub(crate) async fn count_closed(
    client: &Client,
    table: &str,
    weeks: &WeekSettings,
    conversation_id: &str,
    meta: &Item,
    estimate: Satisfaction,
    closed_at: Timestamp,
) -> Result<(), StoreError> {
    if meta.contains_key("satisfaction_week") {
        return Ok(());
    }
    let week = feedback::time::IsoWeek::of(closed_at, &weeks.shop_time_zone).to_string();
    let shard =
        feedback::insights::shard_of(get_s(meta, "customer_id").unwrap_or(conversation_id), weeks.aggregate_shards);
    let counted = estimate_counters(&estimate);
    let tenths = counted.iter().find(|(name, _)| *name == "estimated_stars_tenths").map_or(0, |c| c.1);
    // Twice at most: a rating that lands between our read and our write cancels the first try.
    for _ in 0..2 {
        let stars = rating_stars(client, table, conversation_id).await?;
        let mut counters = counted.clone();
        let mut items = Vec::new();
        let mut values = vec![(":week", s(&week)), (":tenths", n(tenths))];
        match stars {
            Some(stars) => {
                counters.extend(pair_counters(stars, tenths));
                values.push((":yes", AttributeValue::Bool(true)));
                items.push(meta_update(
                    table,
                    conversation_id,
                    "SET satisfaction_week = :week, satisfaction_counted_tenths = :tenths, satisfaction_paired = :yes",
                    "attribute_not_exists(satisfaction_week) AND attribute_not_exists(satisfaction_paired)",
                    values,
                )?);
            }
            None => {
                items.push(meta_update(
                    table,
                    conversation_id,
                    "SET satisfaction_week = :week, satisfaction_counted_tenths = :tenths",
                    "attribute_not_exists(satisfaction_week)",
                    values,
                )?);
                // A rating stored after our read cancels this, and the loop counts the pair.
                let unrated = ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key(keys::conversation(conversation_id), keys::RATING)))
                    .condition_expression("attribute_not_exists(pk)");
                items.push(TransactWriteItem::builder().condition_check(built(unrated.build())?).build());
            }
        }
        items.push(aggregate_add(table, &estimate_delta(&week, shard, &estimate, counters), closed_at)?);
        if transact_once(client, items).await? {
            return Ok(());
        }
        // Counted by an earlier close (nothing to do), or rated meanwhile (count with the pair).
        let again = conversation_item(client, table, conversation_id, keys::META).await?;
        if again.is_some_and(|m| m.contains_key("satisfaction_week")) {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable("the conversation's rating changed while its estimate was counted".into()))
}

/// Counts a new rating against its conversation's estimate, once, in the week the estimate was
/// counted in, with the estimate as counted; nothing when the conversation has no counted estimate
/// yet (the close will pair them).
pub(crate) async fn count_rated(
    client: &Client,
    table: &str,
    shards: u8,
    conversation_id: &str,
    stars: u8,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(meta) = conversation_item(client, table, conversation_id, keys::META).await? else { return Ok(()) };
    let (Some(week), Some(tenths)) =
        (get_s(&meta, "satisfaction_week"), get_n::<i64>(&meta, "satisfaction_counted_tenths"))
    else {
        return Ok(());
    };
    if meta.contains_key("satisfaction_paired") {
        return Ok(());
    }
    let shard = feedback::insights::shard_of(get_s(&meta, "customer_id").unwrap_or(conversation_id), shards);
    let marker = meta_update(
        table,
        conversation_id,
        "SET satisfaction_paired = :yes",
        "attribute_exists(satisfaction_week) AND attribute_not_exists(satisfaction_paired)",
        vec![(":yes", AttributeValue::Bool(true))],
    )?;
    let add = aggregate_add(table, &AggregateDelta::all(week, shard, pair_counters(stars, tenths)), now)?;
    transact_once(client, vec![marker, add]).await.map(|_| ())
}
