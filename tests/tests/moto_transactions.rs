//! Our moto launcher (infra/src/moto_server.py) backs up only the items a transaction touches
//! instead of copying whole tables. A cancelled transaction must still change nothing: no item
//! written, none overwritten, and no stream record left behind.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use testkit::{fresh_feedback_table, moto_url};

fn item(pk: &str, sk: &str, v: &str) -> std::collections::HashMap<String, AttributeValue> {
    [("pk", pk), ("sk", sk), ("v", v)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
        .collect()
}

#[tokio::test]
async fn a_cancelled_transaction_changes_nothing_and_streams_nothing() {
    let (client, table) = fresh_feedback_table().await;
    client.put_item().table_name(&table).set_item(Some(item("A", "1", "old"))).send().await.unwrap();
    let arn =
        client.describe_table().table_name(&table).send().await.unwrap().table.unwrap().latest_stream_arn.unwrap();
    let mut stream = infra::local::streams::StreamReader::new(moto_url(), "us-east-1", &arn);
    assert_eq!(stream.poll(100).await.unwrap().len(), 1, "the first put");

    let put = |pk: &str, v: &str| {
        TransactWriteItem::builder()
            .put(Put::builder().table_name(&table).set_item(Some(item(pk, "1", v))).build().unwrap())
            .build()
    };
    let failing_check = TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name(&table)
                .key("pk", AttributeValue::S("missing".into()))
                .key("sk", AttributeValue::S("1".into()))
                .condition_expression("attribute_exists(pk)")
                .build()
                .unwrap(),
        )
        .build();
    // The overwrite and the insert come before the failing check and after it.
    let result = client
        .transact_write_items()
        .transact_items(put("A", "new"))
        .transact_items(failing_check)
        .transact_items(put("B", "new"))
        .send()
        .await;
    assert!(result.is_err(), "cancelled");
    let a = client
        .get_item()
        .table_name(&table)
        .set_key(Some(item("A", "1", "")).map(|mut k| {
            k.remove("v");
            k
        }))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(a["v"].as_s().unwrap(), "old", "the overwrite was rolled back");
    let b = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("B".into()))
        .key("sk", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap();
    assert!(b.item.is_none(), "the insert was rolled back");
    assert!(stream.poll(100).await.unwrap().is_empty(), "no stream records from a cancelled transaction");

    // A transaction that succeeds still writes and streams both items.
    client.transact_write_items().transact_items(put("A", "newer")).transact_items(put("C", "x")).send().await.unwrap();
    assert_eq!(stream.poll(100).await.unwrap().len(), 2);
}
