//! Estimated satisfaction in the weekly aggregates: each closed conversation's estimate counted
//! once into the week it closed in (marker `satisfaction_week` on its `META`), and each
//! conversation that has both an estimate and the customer's stars counted once as a pair
//! (marker `satisfaction_paired`), whichever came second: the close or the rating.
//!
//! Each count is one transaction: the marker (conditional: written once) and the `ADD`s on the
//! `_all` aggregate of the customer's shard. A run that dies between the close (or the rating's
//! analysis) and its count loses that one count; it never counts twice.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{AGGREGATE_RETENTION_DAYS, Item, expiry, get_s, key, keys, n, s, store_error};
use crate::Timestamp;
use crate::analysis::satisfaction::Satisfaction;
use crate::config::WeekSettings;
use crate::ports::StoreError;
use crate::weekly::ALL;

fn tenths(stars: f32) -> i64 {
    (stars * 10.0).round() as i64
}

/// The `ADD`s of a pair: one more pair, its error in tenths of a star, within one star or not.
fn pair_counters(stars: u8, expected: f32) -> Vec<(&'static str, i64)> {
    let error = (i64::from(stars) * 10 - tenths(expected)).abs();
    vec![("paired", 1), ("paired_error_tenths", error), ("paired_within_one", i64::from(error <= 10))]
}

/// `ADD` counters on the week's `_all` aggregate of a shard.
fn aggregate_add(
    table: &str,
    week: &str,
    shard: u8,
    counters: &[(&'static str, i64)],
    now: Timestamp,
) -> Result<TransactWriteItem, StoreError> {
    let adds: Vec<String> = counters.iter().enumerate().map(|(i, _)| format!("#c{i} :c{i}")).collect();
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(keys::aggregate(week, shard), &keys::aggregate_type(ALL))))
        .update_expression(format!(
            "SET #week = :week, #type = :type, #shard = :shard, #expires = if_not_exists(#expires, :expires) ADD {}",
            adds.join(", ")
        ))
        .expression_attribute_names("#week", "week")
        .expression_attribute_names("#type", "issue_type")
        .expression_attribute_names("#shard", "shard")
        .expression_attribute_names("#expires", "expires_at")
        .expression_attribute_values(":week", s(week))
        .expression_attribute_values(":type", s(ALL))
        .expression_attribute_values(":shard", n(shard))
        .expression_attribute_values(":expires", n(expiry(now, AGGREGATE_RETENTION_DAYS)));
    for (i, (name, value)) in counters.iter().enumerate() {
        update = update
            .expression_attribute_names(format!("#c{i}"), *name)
            .expression_attribute_values(format!(":c{i}"), n(value));
    }
    Ok(TransactWriteItem::builder().update(update.build().map_err(|e| StoreError::Failed(e.to_string()))?).build())
}

/// Runs a marker + counters transaction; a failed marker condition means "already counted".
async fn transact_once(client: &Client, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
    match client.transact_write_items().set_transact_items(Some(items)).send().await {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(t))
                if t.cancellation_reasons()
                    .iter()
                    .all(|r| matches!(r.code(), None | Some("None" | "ConditionalCheckFailed"))) =>
            {
                Ok(false)
            }
            _ => Err(store_error(e)),
        },
    }
}

fn meta_marker(
    table: &str,
    conversation_id: &str,
    set: &str,
    condition: &str,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
        .update_expression(set)
        .condition_expression(condition);
    for (name, value) in values {
        update = update.expression_attribute_values(*name, value.clone());
    }
    Ok(TransactWriteItem::builder().update(update.build().map_err(|e| StoreError::Failed(e.to_string()))?).build())
}

/// Counts a closed conversation's estimate into the week it closed in, once; and the pair with
/// the customer's stars when the conversation was already rated. `meta`: the conversation as the
/// close left it. Returns whether it counted now.
pub(crate) async fn count_closed(
    client: &Client,
    table: &str,
    weeks: &WeekSettings,
    conversation_id: &str,
    meta: &Item,
    estimate: Satisfaction,
    closed_at: Timestamp,
) -> Result<bool, StoreError> {
    if meta.contains_key("satisfaction_week") {
        return Ok(false);
    }
    let week = crate::insights::iso_week(closed_at, &weeks.shop_time_zone);
    let shard =
        crate::insights::shard_of(get_s(meta, "customer_id").unwrap_or(conversation_id), weeks.aggregate_shards);
    let rating = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(keys::conversation(conversation_id), keys::RATING)))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    let stars =
        rating.item().and_then(|i| i.get("stars")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u8>().ok());
    let mut counters = vec![
        ("estimated", 1),
        ("estimated_stars_tenths", tenths(estimate.expected_stars)),
        ("estimated_satisfied", i64::from(estimate.expected_stars >= 4.0)),
        ("estimated_dissatisfied", i64::from(estimate.expected_stars <= 2.0)),
    ];
    let marker = match stars {
        Some(stars) => {
            counters.extend(pair_counters(stars, estimate.expected_stars));
            meta_marker(
                table,
                conversation_id,
                "SET satisfaction_week = :week, satisfaction_paired = :yes",
                "attribute_not_exists(satisfaction_week) AND attribute_not_exists(satisfaction_paired)",
                &[(":week", s(&week)), (":yes", AttributeValue::Bool(true))],
            )?
        }
        None => meta_marker(
            table,
            conversation_id,
            "SET satisfaction_week = :week",
            "attribute_not_exists(satisfaction_week)",
            &[(":week", s(&week))],
        )?,
    };
    let add = aggregate_add(table, &week, shard, &counters, closed_at)?;
    transact_once(client, vec![marker, add]).await
}

/// Counts a new rating against its conversation's estimate, once, in the week the estimate was
/// counted in; nothing when the conversation has no estimate yet (the close will pair them).
pub(crate) async fn count_rated(
    client: &Client,
    table: &str,
    shards: u8,
    conversation_id: &str,
    stars: u8,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(keys::conversation(conversation_id), keys::META)))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    let Some(meta) = out.item() else { return Ok(false) };
    let (Some(week), Some(expected)) = (
        get_s(meta, "satisfaction_week"),
        meta.get("expected_stars").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<f32>().ok()),
    ) else {
        return Ok(false);
    };
    if meta.contains_key("satisfaction_paired") {
        return Ok(false);
    }
    let shard = crate::insights::shard_of(get_s(meta, "customer_id").unwrap_or(conversation_id), shards);
    let marker = meta_marker(
        table,
        conversation_id,
        "SET satisfaction_paired = :yes",
        "attribute_exists(satisfaction_week) AND attribute_not_exists(satisfaction_paired)",
        &[(":yes", AttributeValue::Bool(true))],
    )?;
    let add = aggregate_add(table, week, shard, &pair_counters(stars, expected), now)?;
    transact_once(client, vec![marker, add]).await
}
