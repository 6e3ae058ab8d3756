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

/// A condition check that fails: the transaction it is in is cancelled.
fn failing_check(table: &str) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(table)
        .key("pk", AttributeValue::S("missing".into()))
        .key("sk", AttributeValue::S("1".into()))
        .condition_expression("attribute_exists(pk)")
        .build()
        .unwrap();
    TransactWriteItem::builder().condition_check(check).build()
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
    let failing_check = failing_check(&table);
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

/// Four claims of one item at once, 150 times: exactly one wins each time (moto handles requests on
/// several threads; without the launcher's lock two conditional updates could both pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_updates_have_one_winner() {
    use feedback::conversations::store::{ConversationStore, TriggerEvent};
    use feedback::lease::{Claim, Lease};
    let (client, table) = fresh_feedback_table().await;
    let store = feedback_aws::dynamo::DynamoConversationStore::new(client, &table, 180);
    let now = feedback::Timestamp::now();
    for round in 0..150 {
        let conv = format!("c-{round}");
        let event = TriggerEvent {
            conversation_id: &conv,
            customer_id: "u-1",
            category: "complaint",
            severity: feedback::analysis::triggers::Severity::High,
            rule: None,
            phrase: None,
            message_id: "m-1",
            sent_at: now,
        };
        store.record_trigger(&event).await.unwrap();
        let claims = (0..4).map(|i| {
            let (store, conv) = (store.clone(), conv.clone());
            tokio::spawn(
                async move { store.claim_alert(&conv, "complaint", &Lease::at(format!("o-{i}"), now, 60)).await },
            )
        });
        let mut won = 0;
        for claim in futures_util::future::join_all(claims).await {
            won += usize::from(claim.unwrap().unwrap() == Claim::Claimed);
        }
        assert_eq!(won, 1, "round {round}: {won} winners");
    }
}

/// Writes that race a cancelled transaction keep their stream records (the launcher drops only the
/// cancelled transaction's own).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_transaction_drops_no_other_writes_stream_records() {
    let (client, table) = fresh_feedback_table().await;
    let arn =
        client.describe_table().table_name(&table).send().await.unwrap().table.unwrap().latest_stream_arn.unwrap();
    let failing = {
        let (client, table) = (client.clone(), table.clone());
        tokio::spawn(async move {
            for i in 0..100 {
                let put = TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&table)
                            .set_item(Some(item(&format!("T{i}"), "1", "x")))
                            .build()
                            .unwrap(),
                    )
                    .build();
                let check = failing_check(&table);
                let _ = client.transact_write_items().transact_items(put).transact_items(check).send().await;
            }
        })
    };
    let puts = (0..100).map(|i| {
        let (client, table) = (client.clone(), table.clone());
        tokio::spawn(async move {
            client.put_item().table_name(&table).set_item(Some(item(&format!("P{i}"), "1", "v"))).send().await.unwrap();
        })
    });
    futures_util::future::join_all(puts).await;
    failing.await.unwrap();
    let mut stream = infra::local::streams::StreamReader::new(moto_url(), "us-east-1", &arn);
    let mut records = 0;
    for _ in 0..20 {
        let got = stream.poll(1000).await.unwrap().len();
        records += got;
        if got == 0 {
            break;
        }
    }
    assert_eq!(records, 100, "every accepted put is in the stream, no cancelled one is");
}
