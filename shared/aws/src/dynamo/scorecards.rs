//! Scorecards on the feedback table: a row per week, dimension, shard and key,
//! `SCORE#<week>#<by>#<shard>` / `<key>` (counters, `example_<n>`), read with one Query per shard
//! and summed. A conversation's rows are on the shard of its id (`SCORE_SHARDS` of them), so
//! concurrent closes of busy rows (one channel, the experiment arms) rarely meet in one item: two
//! transactions on one item at once cancel one of them. A close is
//! counted once: one transaction with the conversation's `META` (`scored_week`, `score_rows`, and
//! `score_rated` when the rating is in) conditioned on no `scored_week`, an unrated close also on
//! the `RATING` item still being absent. A later rating: `score_rated` set once, its counters on
//! the rows the close named.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};

use super::aggregates::{ESTIMATE_MODELS, estimate_models};
use super::{Item, built, expiry, get_n, get_s, key, keys, n, s, store_error};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::insights::scorecards::{
    CloseScore, ClosingFacts, SCORE_COUNTERS, SCORE_EXAMPLE_SLOTS, ScoreBy, ScoreCounts, ScoreKey, Scored,
    rating_counters,
};

/// Shards per week and dimension.
pub(crate) const SCORE_SHARDS: u8 = 8;

fn shard_of(conversation_id: &str) -> u8 {
    feedback::insights::shard_of(conversation_id, SCORE_SHARDS)
}

/// Rows are kept as long as the weekly aggregates.
const SCORE_RETENTION_DAYS: u32 = super::AGGREGATE_RETENTION_DAYS;

fn row_name(row: &ScoreKey) -> String {
    format!("{}={}", row.by.as_str(), row.key)
}

fn row_of(name: &str) -> Option<ScoreKey> {
    let (by, key) = name.split_once('=')?;
    Some(ScoreKey { by: ScoreBy::parse(by)?, key: key.to_owned() })
}

/// What a close or a later rating adds to each of its rows.
#[derive(Clone, Copy)]
struct RowAdd<'a> {
    counters: &'a [(&'static str, i64)],
    /// An example into its slot, if free.
    example: Option<(u32, &'a str)>,
    /// The model of the estimate counted, into the row's set.
    estimate_model: Option<&'a str>,
}

/// `ADD` what `add` says on one row.
fn row_update(
    table: &str,
    week: &str,
    shard: u8,
    row: &ScoreKey,
    add: &RowAdd<'_>,
    now: Timestamp,
) -> Result<TransactWriteItem, StoreError> {
    let RowAdd { counters, example, estimate_model } = *add;
    let mut set =
        "SET #week = :week, #by = :by, #key = :key, expires_at = if_not_exists(expires_at, :expires)".to_owned();
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(keys::scorecard(week, row.by.as_str(), shard), &row.key)))
        .expression_attribute_names("#week", "week")
        .expression_attribute_names("#by", "by")
        .expression_attribute_names("#key", "row_key")
        .expression_attribute_values(":week", s(week))
        .expression_attribute_values(":by", s(row.by.as_str()))
        .expression_attribute_values(":key", s(&row.key))
        .expression_attribute_values(":expires", n(expiry(now, SCORE_RETENTION_DAYS)));
    if let Some((slot, text)) = example {
        set.push_str(&format!(", example_{slot} = if_not_exists(example_{slot}, :example)"));
        update = update.expression_attribute_values(":example", s(text));
    }
    let mut adds: Vec<String> = counters.iter().enumerate().map(|(i, _)| format!("#c{i} :c{i}")).collect();
    if let Some(model) = estimate_model {
        adds.push(format!("{ESTIMATE_MODELS} :models"));
        update = update.expression_attribute_values(":models", AttributeValue::Ss(vec![model.to_owned()]));
    }
    for (i, (name, value)) in counters.iter().enumerate() {
        update = update
            .expression_attribute_names(format!("#c{i}"), *name)
            .expression_attribute_values(format!(":c{i}"), n(value));
    }
    let expression = if adds.is_empty() { set } else { format!("{set} ADD {}", adds.join(", ")) };
    Ok(TransactWriteItem::builder().update(built(update.update_expression(expression).build())?).build())
}

/// The conversation's `META` (channel, intents, agent) and, with one Query of the keys from
/// `OFFER` on (`OFFER`, `RATING`, `TRIGGER#...` sort together there), its rating and triggers.
pub(crate) async fn closing_facts(
    client: &Client,
    table: &str,
    conversation_id: &str,
) -> Result<ClosingFacts, StoreError> {
    let pk = keys::conversation(conversation_id);
    let meta = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(pk.clone(), keys::META)))
        .consistent_read(true)
        .projection_expression("channel, intents, agent_id")
        .send()
        .await
        .map_err(store_error)?
        .item
        .unwrap_or_default();
    let mut facts = ClosingFacts {
        channel: get_s(&meta, "channel").map(str::to_owned),
        intents: meta.get("intents").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default(),
        agent_id: get_s(&meta, "agent_id").map(str::to_owned),
        ..Default::default()
    };
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND sk >= :from")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":from", s(keys::OFFER))
            .projection_expression("sk, category, stars, via_follow_up")
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        for item in out.items() {
            match get_s(item, "sk") {
                Some(keys::RATING) => {
                    let stars = get_n::<u8>(item, "stars");
                    let via = item.get("via_follow_up").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
                    facts.rating = stars.map(|s| (s, via));
                }
                Some(sk) if sk.starts_with("TRIGGER#") => {
                    facts.triggers.extend(get_s(item, "category").map(str::to_owned));
                }
                _ => {}
            }
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok(facts)
}

/// Counts a close once (see the module).
pub(crate) async fn score_close(
    client: &Client,
    table: &str,
    week: &str,
    score: &CloseScore,
) -> Result<Scored, StoreError> {
    let now = Timestamp::now();
    let pk = keys::conversation(&score.conversation_id);
    let rows: Vec<String> = score.rows.iter().map(row_name).collect();
    let mut meta = Update::builder()
        .table_name(table)
        .set_key(Some(key(pk.clone(), keys::META)))
        .update_expression("SET scored_week = :week, score_rows = :rows, score_rated = :rated")
        .condition_expression("attribute_not_exists(scored_week)")
        .expression_attribute_values(":week", s(week))
        .expression_attribute_values(":rows", AttributeValue::L(rows.into_iter().map(s).collect()))
        .expression_attribute_values(":rated", AttributeValue::Bool(score.rated));
    meta = meta
        .return_values_on_condition_check_failure(aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::None);
    let mut items = vec![TransactWriteItem::builder().update(built(meta.build())?).build()];
    if !score.rated {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key(pk, keys::RATING)))
            .condition_expression("attribute_not_exists(pk)");
        items.push(TransactWriteItem::builder().condition_check(built(check.build())?).build());
    }
    // The example goes to the slot the conversation's id falls in (first to land stays).
    let slot = feedback::insights::shard_of(&score.conversation_id, SCORE_EXAMPLE_SLOTS as u8) as u32;
    for row in &score.rows {
        let example = score.example.as_deref().map(|text| (slot, text));
        let add = RowAdd { counters: &score.counters, example, estimate_model: score.estimate_model.as_deref() };
        items.push(row_update(table, week, shard_of(&score.conversation_id), row, &add, now)?);
    }
    Ok(match super::transact_on_conditions(client, items).await? {
        None => Scored::Counted,
        Some(0) => Scored::Already,
        Some(_) => Scored::RatedMeanwhile,
    })
}

/// Counts a rating that came after its close (see the module); `false` when there is nothing to do.
pub(crate) async fn score_rating(
    client: &Client,
    table: &str,
    conversation_id: &str,
    stars: u8,
    via_follow_up: bool,
) -> Result<bool, StoreError> {
    let pk = keys::conversation(conversation_id);
    let meta: Item = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(pk.clone(), keys::META)))
        .consistent_read(true)
        .projection_expression("scored_week, score_rows, score_rated")
        .send()
        .await
        .map_err(store_error)?
        .item
        .unwrap_or_default();
    let Some(week) = get_s(&meta, "scored_week").map(str::to_owned) else { return Ok(false) };
    if meta.get("score_rated").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false) {
        return Ok(false);
    }
    let rows: Vec<ScoreKey> = meta
        .get("score_rows")
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok()).filter_map(|n| row_of(n)).collect())
        .unwrap_or_default();
    let now = Timestamp::now();
    let mark = Update::builder()
        .table_name(table)
        .set_key(Some(key(pk, keys::META)))
        .update_expression("SET score_rated = :yes")
        .condition_expression("attribute_exists(scored_week) AND score_rated = :no")
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .expression_attribute_values(":no", AttributeValue::Bool(false));
    let mut items = vec![TransactWriteItem::builder().update(built(mark.build())?).build()];
    let counters = rating_counters(stars, via_follow_up);
    for row in &rows {
        let add = RowAdd { counters: &counters, example: None, estimate_model: None };
        items.push(row_update(table, &week, shard_of(conversation_id), row, &add, now)?);
    }
    Ok(super::transact_on_conditions(client, items).await?.is_none())
}

/// A week's rows by one dimension: its shards summed per key.
pub(crate) async fn scorecard(
    client: &Client,
    table: &str,
    week: &str,
    by: ScoreBy,
) -> Result<Vec<(String, ScoreCounts)>, StoreError> {
    let mut out: Vec<(String, ScoreCounts)> = Vec::new();
    for shard in 0..SCORE_SHARDS {
        let mut start = None;
        loop {
            let page = client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(keys::scorecard(week, by.as_str(), shard)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items() {
                let Some(key) = get_s(item, "sk") else { continue };
                let mut c = ScoreCounts::default();
                for name in SCORE_COUNTERS {
                    let v = get_n::<i64>(item, name).unwrap_or(0);
                    c.add_counter(name, v);
                }
                for slot in 0..SCORE_EXAMPLE_SLOTS {
                    c.examples.extend(get_s(item, &format!("example_{slot}")).map(str::to_owned));
                }
                c.estimate_models = estimate_models(item);
                match out.iter_mut().find(|(k, _)| k == key) {
                    Some((_, sum)) => sum.add(&c),
                    None => out.push((key.to_owned(), c)),
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
    for (_, c) in &mut out {
        c.examples.truncate(SCORE_EXAMPLE_SLOTS as usize);
    }
    Ok(out)
}
