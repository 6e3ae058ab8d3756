//! The weekly aggregate items (`AGG#<week>#SHARD#<n>` / `TYPE#<issue type>`): the one writer of a
//! `feedback::insights::weekly::AggregateDelta` (the analysis, the follow-up run and the estimates
//! all go through it) and the one reader back into `Counts` (by the same stored names).

use aws_sdk_dynamodb::types::{AttributeValue, Update};
use feedback::Timestamp;
use feedback::errors::StoreError;
use feedback::insights::weekly::{AggregateDelta, COUNTERS, Counts, EXAMPLE_SLOTS, Example};

use super::{AGGREGATE_RETENTION_DAYS, Item, expiry, get_s, key, keys, n, s};

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
    if let Some(customer) = &delta.customer {
        adds.push(format!("{} :customer", name("customers")));
        values.push((":customer".into(), AttributeValue::Ss(vec![customer.clone()])));
    }
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

fn signed(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
}

/// One aggregate item read back as `(issue type, counts)`.
pub(crate) fn counts_of(item: &Item) -> Option<(String, Counts)> {
    let issue_type = get_s(item, "issue_type")?.to_owned();
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
