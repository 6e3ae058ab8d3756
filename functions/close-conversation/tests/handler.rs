//! The close-conversation handler, given real API Gateway (HTTP API, payload 2.0) events, against
//! moto: the conversation record, and the follow-up queued on the due-time index.

use aws_sdk_dynamodb::types::AttributeValue;
use close_conversation::App;
use feedback::analysis::triggers::Severity;
use feedback::config::ConversationSettings;
use feedback::conversations::intake::{CloseSettings, IntakeSettings};
use serde_json::{Value, json};
use testkit::{api_event, conversation_items, fresh_feedback_table, unique};

async fn app() -> (App, feedback_aws::dynamo::Client, String) {
    let (client, table) = fresh_feedback_table().await;
    let settings = ConversationSettings {
        table_name: table.clone(),
        retention_days: 180,
        intake: IntakeSettings { alert_min_severity: Severity::High },
        close: CloseSettings { follow_up_delay_hours: 24 },
        weeks: Default::default(),
        staff_locale: feedback::i18n::Locale::En,
    };
    (App::new(client.clone(), settings), client, table)
}

async fn close(app: &App, conversation: &str, body: Value) -> (u16, Value) {
    let path = format!("/conversations/{conversation}/close");
    let event = api_event("POST /conversations/{id}/close", &path, &[("id", conversation)], &body.to_string(), &[]);
    let req = lambda_http::request::from_str(&event).expect("a valid API Gateway v2 event");
    let res = app.handle(req).await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(res.body().as_ref()).unwrap_or(Value::Null))
}

/// Conversations the follow-up run would find due in one hour bucket, the way it will look.
async fn due_in_hour(client: &feedback_aws::dynamo::Client, table: &str, bucket: &str) -> Vec<String> {
    let out = client
        .query()
        .table_name(table)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :b")
        .expression_attribute_values(":b", AttributeValue::S(bucket.to_owned()))
        .send()
        .await
        .unwrap();
    out.items().iter().map(|i| i["conversation_id"].as_s().unwrap().clone()).collect()
}

/// `HH:MM` UTC of the day before yesterday (a close two days ago is recent enough to be followed
/// up), and the hour bucket of its follow-up, due a day later.
fn two_days_ago(hh_mm: &str) -> (String, String, String) {
    let today = jiff::tz::TimeZone::UTC.to_datetime(feedback::Timestamp::now()).date();
    let day = |back: i64| today.checked_sub(jiff::Span::new().days(back)).unwrap();
    let (closed, due) = (format!("{}T{hh_mm}:00Z", day(2)), format!("{}T{hh_mm}:00Z", day(1)));
    (closed, due, format!("DUE#{}T{}", day(1), &hh_mm[..2]))
}

#[tokio::test]
async fn an_unresolved_conversation_is_queued_for_follow_up_once() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let (closed, due, bucket) = two_days_ago("01:30");
    let body = json!({"resolved": false, "closed_at": closed, "customer_id": "u-1", "locale": "zh-CN"});
    let (status, answer) = close(&app, &conv, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["follow_up"], json!({"state": "scheduled", "due_at": due}));
    assert_eq!(due_in_hour(&client, &table, &bucket).await, std::slice::from_ref(&conv));
    let items = conversation_items(&client, &table, &conv).await;
    let follow_up = &items["FOLLOWUP"];
    assert_eq!(follow_up["state"].as_s().unwrap(), "due");
    assert_eq!(follow_up["customer_id"].as_s().unwrap(), "u-1");
    assert_eq!(follow_up["locale"].as_s().unwrap(), "zh-CN");
    assert_eq!(items["META"]["resolved"].as_bool().unwrap(), &false);

    let (status, again) = close(&app, &conv, body).await;
    assert_eq!((status, &again["follow_up"]["state"]), (200, &json!("already_scheduled")));
    assert_eq!(due_in_hour(&client, &table, &bucket).await.len(), 1);
}

#[tokio::test]
async fn resolving_after_all_withdraws_the_follow_up_and_reopening_queues_it_again() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let ((first, _, first_bucket), (resolved, _, _)) = (two_days_ago("10:00"), two_days_ago("10:05"));
    let unresolved = json!({"resolved": false, "closed_at": first, "customer_id": "u-1"});
    close(&app, &conv, unresolved.clone()).await;
    let (_, answer) = close(&app, &conv, json!({"resolved": true, "closed_at": resolved})).await;
    assert_eq!(answer["follow_up"], json!({"state": "cancelled"}));
    assert!(due_in_hour(&client, &table, &first_bucket).await.is_empty());
    let (_, answer) = close(&app, &conv, json!({"resolved": true, "closed_at": resolved})).await;
    assert_eq!(answer["follow_up"]["state"], "cancelled", "a retry answers the same");
    let (reopened, _, reopened_bucket) = two_days_ago("11:00");
    let (_, answer) = close(&app, &conv, json!({"resolved": false, "closed_at": reopened})).await;
    assert_eq!(answer["follow_up"]["state"], "scheduled");
    assert_eq!(due_in_hour(&client, &table, &reopened_bucket).await, [conv]);
}

#[tokio::test]
async fn a_resolved_conversation_needs_no_follow_up_and_an_unknown_customer_cannot_get_one() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let (_, answer) = close(&app, &conv, json!({"resolved": true})).await;
    assert_eq!(answer["follow_up"], json!({"state": "not_needed"}));
    let conv = unique("c");
    let (status, answer) = close(&app, &conv, json!({"resolved": false})).await;
    assert_eq!((status, &answer["follow_up"]["state"]), (200, &json!("customer_unknown")));
    assert!(!conversation_items(&client, &table, &conv).await.contains_key("FOLLOWUP"));
}

#[tokio::test]
async fn closing_someone_elses_conversation_or_bad_input_is_refused() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    close(&app, &conv, json!({"resolved": false, "customer_id": "u-1"})).await;
    let (status, problem) = close(&app, &conv, json!({"resolved": true, "customer_id": "u-2"})).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(conversation_items(&client, &table, &conv).await["FOLLOWUP"]["state"].as_s().unwrap(), "due");
    for (body, field) in [
        (json!({}), "resolved"),
        (json!({"resolved": "yes"}), "resolved"),
        (json!({"resolved": false, "closed_at": "2099-01-01T00:00:00Z"}), "closed_at"),
        (json!({"resolved": false, "channel": "pigeon"}), "channel"),
    ] {
        let (status, problem) = close(&app, &unique("c"), body.clone()).await;
        assert_eq!((status, &problem["invalid_params"][0]["field"]), (422, &json!(field)), "{body}");
    }
}

/// Stores the conversation's messages the way the intake does.
async fn store_messages(client: &feedback_aws::dynamo::Client, table: &str, conv: &str, turns: &[(&str, &str)]) {
    use feedback::conversations::store::ConversationStore;
    use feedback::conversations::{Channel, ChatMessage, Role};
    let store = feedback_aws::dynamo::DynamoConversationStore::new(client.clone(), table, 180);
    let messages: Vec<(ChatMessage, feedback::analysis::triggers::Trigger)> = turns
        .iter()
        .enumerate()
        .map(|(i, (role, text))| {
            let message = ChatMessage {
                // Ids that sort against the order they were sent: the estimate must read by time.
                message_id: format!("m-{}", 9 - i),
                role: if *role == "customer" { Role::Customer } else { Role::Agent },
                text: (*text).to_owned(),
                sent_at: format!("2026-11-01T09:0{i}:00Z").parse().unwrap(),
                customer_id: "u-1".into(),
                channel: Channel::App,
                bot_intent: None,
            };
            (message, feedback::analysis::triggers::Trigger::NONE)
        })
        .collect();
    store.insert_messages(conv, &messages, "2026-11-01T09:10:00Z".parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn closing_estimates_how_satisfied_the_conversation_left_the_customer_and_stores_it() {
    let (app, client, table) = app().await;
    let (thanked, threatened, silent) = (unique("c"), unique("c"), unique("c"));
    let opening = [("customer", "我的快递怎么还没到"), ("agent", "亲，已经帮您催促配送站了")];
    store_messages(&client, &table, &thanked, &[opening[0], opening[1], ("customer", "好的，谢谢你，辛苦了")]).await;
    store_messages(
        &client,
        &table,
        &threatened,
        &[opening[0], opening[1], ("customer", "都一个星期了，再不到我就投诉")],
    )
    .await;
    let body = json!({"resolved": true, "closed_at": "2026-11-01T09:30:00Z", "customer_id": "u-1"});
    let (_, good) = close(&app, &thanked, body.clone()).await;
    let (_, bad) = close(&app, &threatened, body.clone()).await;
    let (good, bad) = (&good["satisfaction"], &bad["satisfaction"]);
    assert!(good["expected_stars"].as_f64().unwrap() > bad["expected_stars"].as_f64().unwrap(), "{good} vs {bad}");
    assert!((-1.0..=1.0).contains(&bad["score"].as_f64().unwrap()), "{bad}");
    let meta = &conversation_items(&client, &table, &threatened).await["META"];
    assert_eq!(meta["expected_stars"].as_n().unwrap().parse::<f64>().unwrap(), bad["expected_stars"].as_f64().unwrap());
    let model = feedback::analysis::satisfaction::SatisfactionModel::conversation().id().to_string();
    assert_eq!(meta["satisfaction_model"].as_s().unwrap(), &model, "stored with the model that made it");

    let (status, none) = close(&app, &silent, body).await;
    assert_eq!((status, &none["satisfaction"]), (200, &Value::Null), "no customer words, no estimate");
}

/// The `_all` counters of a week, summed over shards.
async fn week_totals(
    client: &feedback_aws::dynamo::Client,
    table: &str,
    week: &str,
) -> std::collections::HashMap<String, i64> {
    let mut totals = std::collections::HashMap::new();
    for shard in 0..8 {
        let out = client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("AGG#{week}#SHARD#{shard}")))
            .key("sk", AttributeValue::S("TYPE#_all".into()))
            .send()
            .await
            .unwrap();
        for (k, v) in out.item().cloned().unwrap_or_default() {
            if let Ok(n) = v.as_n().map(|n| n.parse::<i64>().unwrap_or(0)) {
                *totals.entry(k).or_insert(0) += n;
            }
        }
    }
    totals
}

/// Closes the conversation `times` times on 2026-12-01 (ISO week 49 in Shanghai); the first
/// answer and what the closes added to the week's totals.
async fn close_and_count(
    app: &App,
    client: &feedback_aws::dynamo::Client,
    table: &str,
    conv: &str,
    times: usize,
) -> (Value, std::collections::HashMap<String, i64>) {
    let before = week_totals(client, table, "2026-W49").await;
    let body = json!({"resolved": true, "closed_at": "2026-12-01T10:00:00+08:00", "customer_id": "u-1"});
    let (_, answer) = close(app, conv, body.clone()).await;
    for _ in 1..times {
        close(app, conv, body.clone()).await;
    }
    let mut added = week_totals(client, table, "2026-W49").await;
    for (k, v) in added.iter_mut() {
        *v -= before.get(k).copied().unwrap_or(0);
    }
    (answer, added)
}

#[tokio::test]
async fn a_closed_conversations_estimate_counts_once_into_its_week_and_pairs_with_an_earlier_rating() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let turns = [("customer", "我的快递怎么还没到"), ("agent", "已经帮您催促了"), ("customer", "好的，谢谢")];
    store_messages(&client, &table, &conv, &turns).await;
    // Rated before the close (a rating item as the rating store writes it).
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(format!("CONV#{conv}")))
        .item("sk", AttributeValue::S("RATING".into()))
        .item("stars", AttributeValue::N("5".into()))
        .send()
        .await
        .unwrap();
    let (answer, added) = close_and_count(&app, &client, &table, &conv, 2).await;
    let added = |k: &str| added.get(k).copied().unwrap_or(0);
    let expected_tenths = (answer["satisfaction"]["expected_stars"].as_f64().unwrap() * 10.0).round() as i64;
    assert_eq!((added("estimated"), added("estimated_stars_tenths")), (1, expected_tenths), "counted once");
    assert_eq!(added("paired"), 1);
    assert_eq!(added("paired_error_tenths"), (50 - expected_tenths).abs());
    assert_eq!((added("paired_y"), added("paired_xy")), (50, 50 * expected_tenths));
    assert!(added("estimated_satisfied_milli") > 0, "thanks at the end: some likelihood of satisfied");
}

#[tokio::test]
async fn an_unrated_close_counts_the_estimate_alone_and_leaves_the_pair_to_the_rating() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let turns = [("customer", "发票什么时候开"), ("agent", "已经为您申请了"), ("customer", "好的")];
    store_messages(&client, &table, &conv, &turns).await;
    let (_, added) = close_and_count(&app, &client, &table, &conv, 1).await;
    let added = |k: &str| added.get(k).copied().unwrap_or(0);
    // Not rated yet: the estimate counts alone, and the marker leaves the pair to the rating's
    // analysis (the analyze function's tests cover that side).
    assert_eq!((added("estimated"), added("paired")), (1, 0));
    let meta = &conversation_items(&client, &table, &conv).await["META"];
    assert!(meta.contains_key("satisfaction_counted_tenths") && !meta.contains_key("satisfaction_paired"));
}
