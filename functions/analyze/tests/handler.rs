//! The analyze handler fed real DynamoDB stream records, read from moto's stream of a fresh table
//! after storing feedback through the real adapters.

use analyze::{AnalyzeSettings, App};
use aws_sdk_dynamodb::types::AttributeValue;
use feedback::Timestamp;
use feedback::analysis::triggers::Trigger;
use feedback::conversations::store::ConversationStore;
use feedback::conversations::{Channel, ChatMessage, Role};
use feedback::ratings::RatingStore;
use feedback::ratings::{Rating, RatingSubmission};
use feedback_aws::dynamo::{DynamoConversationStore, DynamoRatingStore};
use infra::local::streams::StreamReader;
use serde_json::{Value, json};
use testkit::{conversation_items, fresh_feedback_table, moto_url, unique};

struct World {
    app: App,
    client: feedback_aws::dynamo::Client,
    table: String,
    stream: StreamReader,
}

async fn world() -> World {
    let (client, table) = fresh_feedback_table().await;
    let arn =
        client.describe_table().table_name(&table).send().await.unwrap().table.unwrap().latest_stream_arn.unwrap();
    let settings = AnalyzeSettings {
        table_name: table.clone(),
        shop_time_zone: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        aggregate_shards: 4,
    };
    World {
        app: App::new(client.clone(), settings),
        client,
        stream: StreamReader::new(moto_url(), "us-east-1", &arn),
        table,
    }
}

fn message(id: &str, customer: &str, text: &str) -> (ChatMessage, Trigger) {
    let m = ChatMessage {
        message_id: id.into(),
        role: Role::Customer,
        text: text.into(),
        sent_at: "2026-11-24T02:00:00Z".parse().unwrap(),
        customer_id: customer.into(),
        channel: Channel::App,
        bot_intent: None,
    };
    (m, Trigger::NONE)
}

impl World {
    async fn store_messages(&self, conversation: &str, messages: &[(ChatMessage, Trigger)]) {
        let store = DynamoConversationStore::new(self.client.clone(), &self.table, 180);
        store.insert_messages(conversation, messages, Timestamp::now()).await.unwrap();
    }

    async fn store_rating(&self, conversation: &str, stars: u8, comment: Option<&str>) {
        let store = DynamoRatingStore::new(self.client.clone(), &self.table, 730);
        let submission = RatingSubmission {
            conversation_id: conversation.into(),
            customer_id: "u-9".into(),
            stars,
            comment: comment.map(str::to_owned),
            channel: Channel::Web,
            served_by: None,
            locale: None,
            issue_types: vec!["service".into()],
            order_value_minor: Some(25_900),
            via_follow_up: false,
        };
        let at: Timestamp = "2026-11-24T03:00:00Z".parse().unwrap();
        store.insert_rating(&Rating::new(submission, unique("r"), at, None)).await.unwrap();
    }

    async fn records(&mut self) -> Vec<Value> {
        self.stream.poll(1000).await.unwrap()
    }

    async fn handle(&self, records: &[Value]) -> Value {
        serde_json::to_value(self.app.handle(infra::local::streams::event(records)).await.unwrap()).unwrap()
    }

    /// The week's aggregate items of one issue type, one per shard that has data.
    async fn shard_items(&self, issue_type: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        let mut out = Vec::new();
        for shard in 0..4 {
            let item = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(format!("AGG#2026-W48#SHARD#{shard}")))
                .key("sk", AttributeValue::S(format!("TYPE#{issue_type}")))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item;
            out.extend(item);
        }
        out
    }

    /// The one shard item of an issue type that has data (for single-customer checks).
    async fn aggregate_item(&self, issue_type: &str) -> std::collections::HashMap<String, AttributeValue> {
        let mut items = self.shard_items(issue_type).await;
        assert_eq!(items.len(), 1, "one customer, one shard");
        items.remove(0)
    }

    /// The week's aggregate of one issue type, summed over shards: (items, severity sum, customers).
    async fn aggregate(&self, issue_type: &str) -> (i64, i64, usize) {
        let (mut items, mut severity, mut customers) = (0, 0, 0);
        for item in self.shard_items(issue_type).await {
            let n = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).map_or(0, |v| v.parse::<i64>().unwrap());
            items += n("items");
            severity += n("severity_sum");
            // Counted through customer markers (the item no longer holds a set of ids).
            customers += n("customer_count") as usize;
        }
        (items, severity, customers)
    }
}

#[tokio::test]
async fn new_feedback_is_analysed_and_counted_once_even_when_the_batch_is_retried() {
    let mut w = world().await;
    let conv = unique("c");
    w.store_messages(
        &conv,
        &[message("m-1", "u-1", "快递一个星期了还没到，太慢了"), message("m-2", "u-1", "请问什么时候发货？")],
    )
    .await;
    w.store_rating(&unique("c"), 1, Some("客服态度很差，问题也没解决")).await;
    let records = w.records().await;
    assert!(records.len() >= 3, "{records:?}");

    assert_eq!(w.handle(&records).await, json!({"batchItemFailures": []}));
    let items = conversation_items(&w.client, &w.table, &conv).await;
    let analysis = &items["ANALYSIS#MSG#m-1"]["analysis"].as_m().unwrap();
    assert_eq!(items["ANALYSIS#MSG#m-1"]["expires_at"], items["MSG#m-1"]["expires_at"], "expires with its message");
    assert_eq!(analysis["sentiment"].as_m().unwrap()["label"].as_s().unwrap(), "negative");
    assert_eq!(analysis["week"].as_s().unwrap(), "2026-W48");
    assert!(analysis["counted_types"].as_l().unwrap().iter().any(|t| t.as_s().unwrap() == "logistics"));
    let all = w.aggregate("_all").await;
    assert_eq!((all.0, all.2), (3, 2), "3 items from 2 customers: {all:?}");
    let logistics = w.aggregate("logistics").await;
    assert_eq!(logistics.0, 1);
    assert_eq!(w.aggregate("service").await.0, 1, "the customer's own choice counts");
    let service = w.aggregate_item("service").await;
    assert_eq!(service["order_value_minor_sum"].as_n().unwrap(), "25900");
    assert_eq!(service["stars_1"].as_n().unwrap(), "1");

    // The same batch again (a retry after a timeout): nothing is counted twice.
    assert_eq!(w.handle(&records).await, json!({"batchItemFailures": []}));
    assert_eq!(w.aggregate("_all").await, all);
}

#[tokio::test]
async fn an_unreadable_record_is_reported_and_the_records_before_it_are_kept() {
    let mut w = world().await;
    let conv = unique("c");
    w.store_messages(&conv, &[message("m-1", "u-1", "质量太差了")]).await;
    let mut records = w.records().await;
    let mut poison = records[0].clone();
    poison["dynamodb"]["SequenceNumber"] = json!("999999999999");
    poison["dynamodb"]["NewImage"]["sent_at"] = json!({"N": "12"});
    records.push(poison);
    w.store_messages(&conv, &[message("m-2", "u-1", "物流太慢了")]).await;
    records.extend(w.records().await);

    let answer = w.handle(&records).await;
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": "999999999999"}]}));
    let items = conversation_items(&w.client, &w.table, &conv).await;
    assert!(items.contains_key("ANALYSIS#MSG#m-1"));
    assert!(
        !items.contains_key("ANALYSIS#MSG#m-2"),
        "after the failure nothing is processed: the stream resumes there"
    );
    // Lambda retries from the failed record; without it (sent to the on-failure queue) the rest goes through.
    let rest: Vec<Value> = records.into_iter().filter(|r| r["dynamodb"]["SequenceNumber"] != "999999999999").collect();
    assert_eq!(w.handle(&rest).await, json!({"batchItemFailures": []}));
    assert_eq!(w.aggregate("_all").await.0, 2);
}

#[tokio::test]
async fn a_customer_repeating_the_same_words_is_linked_not_counted_and_noise_is_kept_uncounted() {
    let mut w = world().await;
    let conv = unique("c");
    w.store_messages(
        &conv,
        &[
            message("m-1", "u-1", "东西坏了，要退货"),
            message("m-2", "u-1", "東西壞了，要退貨！！"),
            message("m-3", "u-2", "东西坏了，要退货"),
            message("m-4", "u-1", "asdfghjkl"),
        ],
    )
    .await;
    let records = w.records().await;
    assert_eq!(w.handle(&records).await, json!({"batchItemFailures": []}));
    let items = conversation_items(&w.client, &w.table, &conv).await;
    // The messages were written concurrently: whichever reached the stream first is the original.
    let links: Vec<(&str, &str)> = ["MSG#m-1", "MSG#m-2"]
        .iter()
        .filter_map(|k| items[&format!("ANALYSIS#{k}")].get("duplicate_of").map(|d| (*k, d.as_s().unwrap().as_str())))
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    let (copy, first) = links[0];
    assert!(first.ends_with(if copy == "MSG#m-1" { "/MSG#m-2" } else { "/MSG#m-1" }), "{links:?}");
    assert!(!items["ANALYSIS#MSG#m-3"].contains_key("duplicate_of"), "another customer saying it is new feedback");
    let noise = items["ANALYSIS#MSG#m-4"]["analysis"].as_m().unwrap();
    assert_eq!(noise["invalid"].as_m().unwrap()["reason"].as_s().unwrap(), "keyboard_mash");
    assert_eq!(w.aggregate("_all").await.0, 2);
}

#[tokio::test]
async fn bot_messages_and_other_entities_are_skipped() {
    let mut w = world().await;
    let store = DynamoConversationStore::new(w.client.clone(), &w.table, 180);
    let conv = unique("c");
    store.claim_for_customer(&conv, "u-1", Channel::App, &[], Timestamp::now()).await.unwrap();
    let (mut bot, t) = message("m-1", "u-1", "您好，请问有什么可以帮您");
    bot.role = Role::Bot;
    store.insert_messages(&conv, &[(bot, t)], Timestamp::now()).await.unwrap();
    let records = w.records().await;
    assert!(records.len() >= 2);
    assert_eq!(w.handle(&records).await, json!({"batchItemFailures": []}));
    assert_eq!(w.aggregate("_all").await.0, 0);
    assert!(!conversation_items(&w.client, &w.table, &conv).await.contains_key("ANALYSIS#MSG#m-1"));
}

#[tokio::test]
async fn a_rating_after_the_close_is_paired_with_the_estimate_once_even_when_the_batch_is_retried() {
    let mut w = world().await;
    let conv = unique("c");
    let weeks = feedback::config::WeekSettings {
        shop_time_zone: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        aggregate_shards: 4,
    };
    let closing = feedback::conversations::Closing {
        conversation_id: conv.clone().into(),
        resolved: false,
        closed_at: "2026-11-24T02:30:00Z".parse().unwrap(),
        customer_id: Some("u-9".into()),
        channel: None,
        locale: None,
        agent_id: None,
    };
    // Estimated at 2 stars (judgement -1 on the -2..2 scale).
    let estimate = feedback::analysis::satisfaction::Satisfaction::from_judgement(-1.0);
    let store = DynamoConversationStore::new(w.client.clone(), &w.table, 180).with_weeks(weeks);
    store.close(&closing, Some(estimate), None).await.unwrap();
    w.store_rating(&conv, 1, None).await;
    let records = w.records().await;

    assert_eq!(w.handle(&records).await, json!({"batchItemFailures": []}));
    assert_eq!(w.handle(&records).await, json!({"batchItemFailures": []}));
    let all = w.shard_items("_all").await;
    let total =
        |k: &str| all.iter().filter_map(|i| i.get(k)).map(|v| v.as_n().unwrap().parse::<i64>().unwrap()).sum::<i64>();
    assert_eq!((total("estimated"), total("paired")), (1, 1), "{all:?}");
    // 1 star given, 2.0 expected: one star apart; the correlation sums hold the pair as counted.
    assert_eq!(total("paired_error_tenths"), 10);
    assert_eq!((total("paired_x"), total("paired_y"), total("paired_xy")), (20, 10, 200));
}

#[tokio::test]
async fn a_customer_message_is_read_in_the_context_of_the_messages_before_it() {
    let mut w = world().await;
    let conv = unique("c");
    let at = |minute: u32| -> Timestamp { format!("2026-11-24T02:{minute:02}:00Z").parse().unwrap() };
    let turn = |id: &str, role: Role, text: &str, minute: u32| {
        let (mut m, t) = message(id, "u-1", text);
        m.role = role;
        m.sent_at = at(minute);
        (m, t)
    };
    // Ids sort against time: the context must follow sent_at.
    w.store_messages(
        &conv,
        &[
            turn("m-9", Role::Customer, "我的快递什么时候到", 1),
            turn("m-5", Role::Agent, "亲，请您耐心等待一下哦", 2),
            turn("m-1", Role::Customer, "好的谢谢", 3),
        ],
    )
    .await;
    let item = feedback::insights::StoredFeedback {
        pk: format!("CONV#{conv}"),
        sk: "MSG#m-1".into(),
        kind: feedback::insights::FeedbackKind::Message { message_id: "m-1".into() },
        conversation_id: conv.clone().into(),
        customer_id: "u-1".into(),
        text: Some("好的谢谢".into()),
        at: at(3),
    };
    let store = feedback_aws::dynamo::DynamoAnalysisStore::new(w.client.clone(), &w.table, 4);
    let earlier = feedback::insights::AnalysisStore::earlier(&store, &item).await.unwrap();
    assert_eq!(earlier.shop.as_deref(), Some("亲，请您耐心等待一下哦"));
    assert_eq!(earlier.customer.as_deref(), Some("我的快递什么时候到"));
    assert_eq!(earlier.count, 2);
    // The batch analyses every customer message with it and fails nothing.
    let records = w.records().await;
    assert_eq!(w.handle(&records).await, json!({"batchItemFailures": []}));
    let items = conversation_items(&w.client, &w.table, &conv).await;
    let thanks = &items["ANALYSIS#MSG#m-1"]["analysis"].as_m().unwrap()["sentiment"].as_m().unwrap()["label"];
    assert_eq!(thanks.as_s().unwrap(), "positive");
}
