//! The weekly aggregate items (`AGG#<week>#SHARD#<n>` / `TYPE#<issue type>`): the one writer of a
//! `feedback::insights::weekly::AggregateDelta` (the analysis, the follow-up run and the estimates
//! all go through it) and the one reader back into `Counts` (by the same stored names). Unique
//! customers are counted through small marker items (`SEEN#<week>#<customer>` / `<issue type>`) and
//! a `customer_count`, so no aggregate item grows with the week's customers (DynamoDB caps an item
//! at 400 KB and bills an update by the item's whole size).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, Update};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::insights::weekly::{AggregateDelta, COUNTERS, Counts, EXAMPLE_SLOTS, Example};

use super::{AGGREGATE_RETENTION_DAYS, Item, expiry, get_s, key, keys, n, s, store_error};

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
    debug_assert!(delta.customer.is_none(), "customers are counted through markers (see `customers`)");
    if let Some((slot, example)) = &delta.example {
        // The first example to land in each slot stays.
        let slot = name(&format!("example_{slot}"));
        set.push_str(&format!(", {slot} = if_not_exists({slot}, :example)"));
        let stored = [
            ("text".to_owned(), s(&example.text)),
            ("severity".to_owned(), n(example.severity)),
            ("at".to_owned(), s(&example.at)),
        ];
        values.push((":example".into(), AttributeValue::M(stored.into())));
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

/// How long a customer marker is kept: long after the stream could still bring an event of its week.
const SEEN_RETENTION_DAYS: u32 = 60;

/// Unique customers without growing any item: for each delta that names a customer, whether that
/// customer is new to its week and issue type (no marker yet, read consistently). For the new
/// ones, `counted` turns the customer into `customer_count + 1` and returns the marker's
/// conditional put for the same transaction (a race with another event of the same customer
/// cancels it, and the caller tries again); for the others the customer is dropped. Either way
/// `delta.customer` is `None` afterwards.
pub(crate) async fn count_customers(
    client: &Client,
    table: &str,
    deltas: &mut [AggregateDelta],
    now: Timestamp,
) -> Result<Vec<Put>, StoreError> {
    let keys: Vec<Item> =
        deltas.iter().filter_map(|d| Some(key(keys::seen(&d.week, d.customer.as_deref()?), &d.issue_type))).collect();
    let mut seen: Vec<Item> = Vec::new();
    if !keys.is_empty() {
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .projection_expression("pk, sk")
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?,
        );
        let mut attempt = 0;
        while let Some(request) = pending.take() {
            let out = client.batch_get_item().request_items(table, request).send().await.map_err(store_error)?;
            seen.extend(out.responses.unwrap_or_default().remove(table).unwrap_or_default());
            if let Some(rest) = out.unprocessed_keys.and_then(|mut u| u.remove(table)).filter(|r| !r.keys.is_empty()) {
                attempt += 1;
                if attempt > 5 {
                    return Err(StoreError::Unavailable("customer markers kept coming back unprocessed".into()));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                pending = Some(rest);
            }
        }
    }
    let mut puts = Vec::new();
    for d in deltas.iter_mut() {
        let Some(customer) = d.customer.take() else { continue };
        let (pk, sk) = (keys::seen(&d.week, &customer), d.issue_type.clone());
        let known = seen.iter().any(|i| get_s(i, "pk") == Some(pk.as_str()) && get_s(i, "sk") == Some(sk.as_str()));
        if known {
            continue;
        }
        d.counters.push(("customer_count", 1));
        let mut marker = key(pk, &sk);
        marker.insert("expires_at".into(), n(expiry(now, SEEN_RETENTION_DAYS)));
        puts.push(
            Put::builder()
                .table_name(table)
                .set_item(Some(marker))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?,
        );
    }
    Ok(puts)
}

fn signed(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
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
    for slot in 0..EXAMPLE_SLOTS {
        if let Some(m) = item.get(&format!("example_{slot}")).and_then(|v| v.as_m().ok()) {
            c.examples.push(Example {
                text: get_s(m, "text").unwrap_or_default().to_owned(),
                severity: signed(m, "severity").clamp(0, 5) as u8,
                at: get_s(m, "at").unwrap_or_default().to_owned(),
            });
        }
    }
    Some((issue_type, c))
}
