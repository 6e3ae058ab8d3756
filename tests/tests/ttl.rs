//! Items live from the time they are stored, not from an old time a caller reported: a message
//! sent (by its timestamp) in 2001 or a close reported late must not store a TTL already past,
//! which DynamoDB would act on by deleting the trigger record with its "alert sent" mark.

use feedback::Timestamp;
use feedback::analysis::triggers::Severity;
use feedback::conversations::store::{ConversationStore, TriggerEvent};
use feedback::conversations::{Channel, Closing};
use feedback_aws::dynamo::DynamoConversationStore;
use testkit::{conversation_items, fresh_feedback_table, unique};

#[tokio::test]
async fn old_reported_times_do_not_make_items_expire_at_once() {
    let (client, table) = fresh_feedback_table().await;
    let store = DynamoConversationStore::new(client.clone(), &table, 180);
    let conv = unique("c");
    let old: Timestamp = "2001-01-01T00:00:00Z".parse().unwrap();
    let event = TriggerEvent {
        conversation_id: &conv,
        customer_id: "u-1",
        category: "complaint",
        severity: Severity::High,
        rule: Some("zh.complaint"),
        phrase: Some("投诉"),
        message_id: "m-1",
        sent_at: old,
    };
    store.record_trigger(&event).await.unwrap();
    let closing = Closing {
        conversation_id: conv.clone().into(),
        resolved: false,
        closed_at: Timestamp::now() - jiff::SignedDuration::from_hours(24 * 400),
        customer_id: Some("u-1".into()),
        channel: Some(Channel::App),
        locale: None,
        agent_id: None,
    };
    store.close(&closing, None, Some(closing.closed_at + jiff::SignedDuration::from_hours(24))).await.unwrap();
    let items = conversation_items(&client, &table, &conv).await;
    let in_days = |sk: &str| {
        let at: i64 = items[sk]["expires_at"].as_n().unwrap().parse().unwrap();
        (at - Timestamp::now().as_second()) / 86_400
    };
    assert!(in_days("TRIGGER#complaint") >= 179, "{}", in_days("TRIGGER#complaint"));
    assert!(in_days("META") >= 179, "{}", in_days("META"));
    assert!(in_days("FOLLOWUP") >= 400, "kept while its unsubscribe link works: {}", in_days("FOLLOWUP"));
}
