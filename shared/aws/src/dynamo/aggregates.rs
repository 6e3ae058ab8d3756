//! The weekly aggregate items (`AGG#<week>#SHARD#<n>` / `TYPE#<issue type>`): the one writer of a
//! `feedback::insights::weekly::AggregateDelta` (the analysis, the follow-up run and the estimates
//! all go through it) and the one reader back into `Counts` (by the same stored names). Unique
//! customers are counted through one small marker per customer and week (`SEEN#<week>#<customer>`) and
//! a `customer_count`, so no aggregate item grows with the week's customers (DynamoDB caps an item
//! at 400 KB and bills an update by the item's whole size).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Update};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::insights::weekly::{AggregateDelta, COUNTERS, Counts, EXAMPLE_SLOTS, Example};

use super::{AGGREGATE_RETENTION_DAYS, Item, expiry, get_n, get_s, key, keys, n, s, store_error};

/// The update that adds `delta` to its aggregate item (created on first use).
pub(crate) fn update(table: &str, delta: &AggregateDelta, now: Timestamp) -> Result<Update, StoreError> {
    // Every attribute through a name placeholder: several plain names (shard, items, ...) are
    // DynamoDB reserved words.
    let mut names: Vec<(String, String)> = Vec::new();
    let mut name = |attribute: &str| {
        let placeholder = format!("#a{}", names.len());
        names.push((placeholder.clone(), attribute.to_owned()));
        placeholder
    };
    let mut set = format!(
        "SET {} = :week, {} = :type, {} = :shard, {e} = if_not_exists({e}, :expires)",
        name("week"),
        name("issue_type"),
        name("shard"),
        e = name("expires_at"),
    );
    let mut adds: Vec<String> = Vec::new();
    let mut values: Vec<(String, AttributeValue)> = vec![
        (":week".into(), s(&delta.week)),
        (":type".into(), s(&delta.issue_type)),
        (":shard".into(), n(delta.shard)),
        (":expires".into(), n(expiry(now, AGGREGATE_RETENTION_DAYS))),
    ];
    for (i, (counter, value)) in delta.counters.iter().enumerate() {
        adds.push(format!("{} :c{i}", name(counter)));
        values.push((format!(":c{i}"), n(value)));
    }
    if let Some(model) = &delta.estimate_model {
        // A set: the week keeps which models counted, however many estimates each made.
        adds.push(format!("{} :models", name(ESTIMATE_MODELS)));
        values.push((":models".into(), AttributeValue::Ss(vec![model.clone()])));
    }
    debug_assert!(delta.customer.is_none(), "customers are counted through markers (see `customers`)");
    if let Some((slot, example)) = &delta.example {
        // The first example to land in each slot stays.
        let slot = name(&format!("example_{slot}"));
        set.push_str(&format!(", {slot} = if_not_exists({slot}, :example)"));
        let mut stored: std::collections::HashMap<String, AttributeValue> = [
            ("text".to_owned(), s(&example.text)),
            ("severity".to_owned(), n(example.severity)),
            ("at".to_owned(), s(&example.at)),
        ]
        .into();
        if let Some(reference) = &example.reference {
            stored.insert("ref".to_owned(), s(reference));
        }
        values.push((":example".into(), AttributeValue::M(stored)));
    }
    let expression = if adds.is_empty() { set } else { format!("{set} ADD {}", adds.join(", ")) };
    Update::builder()
        .table_name(table)
        .set_key(Some(key(keys::aggregate(&delta.week, delta.shard), &keys::aggregate_type(&delta.issue_type))))
        .update_expression(expression)
        .set_expression_attribute_names(Some(names.into_iter().collect()))
        .set_expression_attribute_values(Some(values.into_iter().collect()))
        .build()
        .map_err(|e| StoreError::Failed(e.to_string()))
}

/// The string set of the models whose estimates an aggregate (or a scorecard row) counted.
pub(crate) const ESTIMATE_MODELS: &str = "estimate_models";

/// The models an item counted estimates of (none: counted before the close stored its model).
pub(crate) fn estimate_models(item: &Item) -> std::collections::BTreeSet<String> {
    item.get(ESTIMATE_MODELS).and_then(|v| v.as_ss().ok()).map(|m| m.iter().cloned().collect()).unwrap_or_default()
}

/// How long a customer marker is kept: long after the stream could still bring an event of its week.
const SEEN_RETENTION_DAYS: u32 = 60;

/// Unique customers without growing any item: one small marker per customer and week
/// (`SEEN#<week>#<customer>` / `SEEN`) holding the issue types the customer is counted under. For
/// each delta that names a customer, read consistently whether the marker has its issue type; the
/// new ones turn into `customer_count + 1`, and the returned update adds them to the marker on the
/// condition that none is there yet (a race with another event of the same customer cancels the
/// transaction, and the caller tries again). Either way `delta.customer` is `None` afterwards.
/// One marker per customer and week keeps a customer's first message at one small write more.
pub(crate) async fn count_customers(
    client: &Client,
    table: &str,
    deltas: &mut [AggregateDelta],
    now: Timestamp,
) -> Result<Option<Update>, StoreError> {
    let Some((week, customer)) = deltas.iter().find_map(|d| Some((d.week.clone(), d.customer.clone()?))) else {
        return Ok(None);
    };
    let marker_key = key(keys::seen(&week, &customer), SEEN);
    let marker = client
        .get_item()
        .table_name(table)
        .set_key(Some(marker_key.clone()))
        .consistent_read(true)
        .projection_expression("issue_types")
        .send()
        .await
        .map_err(store_error)?
        .item;
    let counted: Vec<String> =
        marker.as_ref().and_then(|m| m.get("issue_types")).and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    let mut new_types = Vec::new();
    for d in deltas.iter_mut() {
        if d.customer.take().is_some() && !counted.contains(&d.issue_type) && !new_types.contains(&d.issue_type) {
            d.counters.push(("customer_count", 1));
            new_types.push(d.issue_type.clone());
        }
    }
    if new_types.is_empty() {
        return Ok(None);
    }
    let none_there: Vec<String> = (0..new_types.len()).map(|i| format!("NOT contains(issue_types, :t{i})")).collect();
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(marker_key))
        .update_expression("ADD issue_types :new SET expires_at = :expires")
        .condition_expression(format!("attribute_not_exists(issue_types) OR ({})", none_there.join(" AND ")))
        .expression_attribute_values(":new", AttributeValue::Ss(new_types.clone()))
        .expression_attribute_values(":expires", n(expiry(now, SEEN_RETENTION_DAYS)));
    for (i, t) in new_types.iter().enumerate() {
        update = update.expression_attribute_values(format!(":t{i}"), s(t));
    }
    update.build().map(Some).map_err(|e| StoreError::Failed(e.to_string()))
}

/// The sort key of a customer's marker.
const SEEN: &str = "SEEN";

fn signed(item: &Item, name: &str) -> i64 {
    get_n::<i64>(item, name).unwrap_or(0)
}

/// One aggregate item read back as `(issue type, counts)`.
pub(crate) fn counts_of(item: &Item) -> Option<(String, Counts)> {
    let issue_type = get_s(item, "issue_type")?.to_owned();
    // Weeks written before the markers kept their customers as a set on the item.
    let mut c = Counts {
        customers: item.get("customers").and_then(|v| v.as_ss().ok()).map_or(0, |s| s.len() as u64),
        ..Default::default()
    };
    for name in COUNTERS {
        c.add_counter(name, signed(item, name));
    }
    c.estimate_models = estimate_models(item);
    for slot in 0..EXAMPLE_SLOTS {
        if let Some(m) = item.get(&format!("example_{slot}")).and_then(|v| v.as_m().ok()) {
            c.examples.push(Example {
                text: get_s(m, "text").unwrap_or_default().to_owned(),
                severity: signed(m, "severity").clamp(0, 5) as u8,
                at: get_s(m, "at").unwrap_or_default().to_owned(),
                reference: get_s(m, "ref").map(str::to_owned),
            });
        }
    }
    Some((issue_type, c))
}
