//! A conversation's log (`LOG#<sent_at>#<message_id>`, one entry per stored message) on moto: what
//! the stream analysis reads a message's context from. The contract suite checks what is read; this
//! checks the entries themselves: one per message, kept with it, mended by a resend, none for a
//! conflicting message, and out of the range the close's scorecard reads.

use aws_sdk_dynamodb::types::AttributeValue;
use feedback::analysis::triggers::Trigger;
use feedback::conversations::store::{ConversationStore, MessageStored};
use feedback::conversations::{Channel, ChatMessage, Role};
use feedback_aws::dynamo::{Client, DynamoConversationStore, keys};
use testkit::{fresh_feedback_table, unique};

fn message(id: &str, role: Role, text: &str, sent: &str) -> (ChatMessage, Trigger) {
    let message = ChatMessage {
        message_id: id.to_owned(),
        role,
        text: text.to_owned(),
        sent_at: sent.parse().unwrap(),
        customer_id: "u-1".into(),
        channel: Channel::App,
        bot_intent: None,
    };
    (message, Trigger::NONE)
}

/// The conversation's log entries, oldest first: (sort key, role, message id, expires_at).
async fn log(client: &Client, table: &str, conv: &str) -> Vec<(String, String, String, String)> {
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :log)")
        .expression_attribute_values(":pk", AttributeValue::S(keys::conversation(conv)))
        .expression_attribute_values(":log", AttributeValue::S(keys::TURN_PREFIX.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let text = |i: &std::collections::HashMap<String, AttributeValue>, k: &str| match &i[k] {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    out.items().iter().map(|i| (text(i, "sk"), text(i, "role"), text(i, "message_id"), text(i, "expires_at"))).collect()
}

async fn expires_at_of_message(client: &Client, table: &str, conv: &str, id: &str) -> String {
    let item = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(keys::conversation(conv)))
        .key("sk", AttributeValue::S(keys::message(id)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    item["expires_at"].as_n().unwrap().clone()
}

#[tokio::test]
async fn each_stored_message_has_one_log_entry_in_time_order_and_a_resend_mends_a_missing_one() {
    let (client, table) = fresh_feedback_table().await;
    let store = DynamoConversationStore::new(client.clone(), &table, 180);
    let conv = unique("c");
    let now = "2026-11-18T03:10:00Z".parse().unwrap();
    // Ids sort the other way round from time.
    let batch = [
        message("z-1", Role::Customer, "到哪了", "2026-11-18T03:00:00Z"),
        message("a-2", Role::Agent, "帮您查一下", "2026-11-18T03:00:05.250Z"),
    ];
    let stored = store.insert_messages(&conv, &batch, now).await.unwrap();
    assert_eq!(stored, vec![MessageStored::Created, MessageStored::Created]);
    let first = log(&client, &table, &conv).await;
    let sks: Vec<&str> = first.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(sks, ["LOG#2026-11-18T03:00:00.000Z#z-1", "LOG#2026-11-18T03:00:05.250Z#a-2"]);
    assert_eq!((first[0].1.as_str(), first[0].2.as_str()), ("customer", "z-1"));
    assert_eq!((first[1].1.as_str(), first[1].2.as_str()), ("agent", "a-2"));
    assert_eq!(first[0].3, expires_at_of_message(&client, &table, &conv, "z-1").await, "expires with its message");

    // A retried request, days later: nothing new, and the entries still expire with their messages.
    let later = "2026-11-21T03:10:00Z".parse().unwrap();
    let again = store.insert_messages(&conv, &batch, later).await.unwrap();
    assert_eq!(again, vec![MessageStored::Duplicate, MessageStored::Duplicate]);
    assert_eq!(log(&client, &table, &conv).await, first);

    // A request that failed between the message and its entry: the retry writes the entry.
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(keys::conversation(&conv)))
        .key("sk", AttributeValue::S(first[1].0.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(log(&client, &table, &conv).await.len(), 1);
    store.insert_messages(&conv, &batch[1..], later).await.unwrap();
    assert_eq!(log(&client, &table, &conv).await, first, "mended, expiring with the message");

    // The same id with other content is refused, and leaves no entry at its own time.
    let conflict = [message("a-2", Role::Agent, "别的内容", "2026-11-18T03:00:09Z")];
    assert_eq!(store.insert_messages(&conv, &conflict, now).await.unwrap(), vec![MessageStored::Conflict]);
    assert_eq!(log(&client, &table, &conv).await, first);
}

#[test]
fn log_entries_sort_before_what_the_close_reads_from_offer_on() {
    let entry = keys::turn("2026-11-18T03:00:00.000Z", "m-1");
    assert!(entry.as_str() < keys::OFFER, "{entry}");
    assert!(!entry.starts_with(&keys::message("")), "not read as a message");
}
