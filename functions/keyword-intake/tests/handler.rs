//! The keyword-intake handler, given real API Gateway (HTTP API, payload 2.0) events, against moto:
//! messages in DynamoDB, staff alerts read back from moto's record of SNS.

use feedback::analysis::triggers::Severity;
use feedback::config::ConversationSettings;
use feedback::conversations::intake::{CloseSettings, IntakeSettings};
use feedback::conversations::store::SET_MEMBERS_KEPT;
use keyword_intake::App;
use serde_json::{Value, json};
use testkit::{api_event, conversation_items, fresh_feedback_table, fresh_topic, moto_url, notifications, unique};

struct World {
    app: App,
    dynamodb: feedback_aws::dynamo::Client,
    table: String,
    topic: String,
}

async fn world() -> World {
    let (dynamodb, table) = fresh_feedback_table().await;
    let (sns, topic) = fresh_topic().await;
    World { app: App::new(dynamodb.clone(), sns, &topic, settings(&table)), dynamodb, table, topic }
}

fn settings(table: &str) -> ConversationSettings {
    ConversationSettings {
        table_name: table.to_owned(),
        retention_days: 180,
        intake: IntakeSettings { alert_min_severity: Severity::High },
        close: CloseSettings { follow_up_delay_hours: 24 },
        weeks: Default::default(),
        staff_locale: feedback::i18n::Locale::En,
    }
}

fn message(id: &str, role: &str, text: &str, minute: u32) -> Value {
    json!({"message_id": id, "role": role, "text": text, "sent_at": format!("2026-11-01T08:{minute:02}:00Z"),
           "customer_id": "u-1", "channel": "wechat"})
}

async fn post_raw(app: &App, conversation: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let path = format!("/conversations/{conversation}/messages");
    let event = api_event("POST /conversations/{id}/messages", &path, &[("id", conversation)], body, headers);
    let req = lambda_http::request::from_str(&event).expect("a valid API Gateway v2 event");
    let res = app.handle(req).await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(res.body().as_ref()).unwrap_or(Value::Null))
}

async fn post(app: &App, conversation: &str, messages: &[Value]) -> (u16, Value) {
    post_raw(app, conversation, &json!({ "messages": messages }).to_string(), &[]).await
}

/// `GET /conversations/{id}/strategy`.
async fn get_strategy(app: &App, conversation: &str) -> (u16, Value) {
    let path = format!("/conversations/{conversation}/strategy");
    let event = api_event("GET /conversations/{id}/strategy", &path, &[("id", conversation)], "", &[]);
    let req = lambda_http::request::from_str(&event).expect("a valid API Gateway v2 event");
    let res = app.handle(req).await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(res.body().as_ref()).unwrap_or(Value::Null))
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

impl World {
    async fn items(&self, conversation: &str) -> std::collections::BTreeMap<String, Item> {
        conversation_items(&self.dynamodb, &self.table, conversation).await
    }
    async fn alerts(&self) -> Vec<infra::local::moto::SentNotification> {
        notifications(moto_url(), &self.topic).await
    }
}

fn s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("")
}

#[tokio::test]
async fn messages_are_stored_once_and_a_resend_changes_nothing() {
    let w = world().await;
    let conv = unique("c");
    let batch = [message("m-1", "customer", "在吗", 0), message("m-2", "bot", "您好，请问有什么可以帮您？", 1)];
    let (status, body) = post(&w.app, &conv, &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0], json!({"message_id": "m-1", "stored": "created"}));
    assert_eq!(body["action"], Value::Null);
    let items = w.items(&conv).await;
    let (log, rest): (Vec<&String>, Vec<&String>) = items.keys().partition(|k| k.starts_with("LOG#"));
    assert_eq!(rest, ["META", "MSG#m-1", "MSG#m-2"]);
    assert_eq!(log.iter().map(|k| &k[k.len() - 3..]).collect::<Vec<_>>(), ["m-1", "m-2"], "one log entry each");
    assert_eq!(s(&items["MSG#m-2"], "role"), "bot");
    assert_eq!(s(&items["META"], "customer_id"), "u-1");
    let expires: i64 = items["MSG#m-1"]["expires_at"].as_n().unwrap().parse().unwrap();
    let received: jiff::Timestamp = s(&items["MSG#m-1"], "received_at").parse().unwrap();
    assert_eq!(expires - received.as_second(), 180 * 86_400);

    let (status, body) = post(&w.app, &conv, &batch).await;
    assert_eq!(status, 200);
    assert!(body["messages"].as_array().unwrap().iter().all(|m| m["stored"] == "duplicate"), "{body}");
    assert_eq!(w.items(&conv).await.len(), 5);

    // The same id with other words is not a resend: the first message is kept.
    let (status, body) = post(&w.app, &conv, &[message("m-1", "customer", "我要投诉", 0)]).await;
    assert_eq!((status, &body["messages"][0]["stored"]), (200, &json!("conflict")), "{body}");
    assert_eq!(body["action"], Value::Null);
    assert_eq!(s(&w.items(&conv).await["MSG#m-1"], "text"), "在吗");
    assert!(w.alerts().await.is_empty());
}

#[tokio::test]
async fn a_complaint_opens_the_form_records_one_trigger_event_and_alerts_staff_once() {
    let w = world().await;
    let conv = unique("c");
    let complaint = message("m-1", "customer", "再不处理我就要投诉！电话13812345678", 0);
    let (status, body) = post(&w.app, &conv, std::slice::from_ref(&complaint)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["trigger"]["category"], "complaint");
    let action = &body["action"];
    assert_eq!(action["type"], "open_feedback_form");
    assert_eq!(action["reason"]["category"], "complaint");
    assert_eq!(action["reason"]["severity"], "high");
    assert_eq!(action["reason"]["message_id"], "m-1");
    assert_eq!(action["locale"], "zh-CN");
    assert_eq!(action["form"]["submit_to"], "POST /ratings");
    assert_eq!(body["alerts"], json!([{"category": "complaint", "severity": "high", "status": "sent"}]));

    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert!(alert.message.contains(&conv) && alert.message.contains("[phone]"), "{}", alert.message);
    assert!(!alert.message.contains("13812345678"));
    assert_eq!(alert.attributes["severity"], "high");
    assert_eq!(alert.attributes["category"], "complaint");
    assert_eq!(
        alert.subject.as_deref(),
        Some(format!("[Feedback Loop] HIGH complaint in conversation {conv}").as_str())
    );

    let items = w.items(&conv).await;
    let trigger = &items["TRIGGER#complaint"];
    assert_eq!(s(trigger, "first_message_id"), "m-1");
    assert_eq!(s(trigger, "alert_notification_id"), alert.message_id);
    assert!(s(trigger, "gsi1pk").starts_with("FEEDBACK#2026-11-01"));

    // A retry answers the same and sends nothing more.
    let (status, again) = post(&w.app, &conv, &[complaint]).await;
    assert_eq!(status, 200);
    assert_eq!(again["action"], body["action"]);
    assert_eq!(again["alerts"][0]["status"], "already_sent");
    // A second complaint is recorded on the same event, without asking or alerting again.
    let (_, later) = post(&w.app, &conv, &[message("m-2", "customer", "我要去12315投诉你们", 3)]).await;
    assert_eq!(later["messages"][0]["trigger"]["category"], "complaint");
    assert_eq!(later["action"], Value::Null);
    assert_eq!(w.alerts().await.len(), 1);
    let items = w.items(&conv).await;
    assert_eq!(items.keys().filter(|k| k.starts_with("TRIGGER#")).count(), 1);
    assert_eq!(items["TRIGGER#complaint"]["message_ids"].as_ss().unwrap().len(), 2);
}

#[tokio::test]
async fn only_customer_messages_trigger_and_medium_ones_do_not_alert() {
    let w = world().await;
    let conv = unique("c");
    let (_, body) = post(
        &w.app,
        &conv,
        &[
            message("m-1", "bot", "如果您不满意，可以申请退款或投诉", 0),
            message("m-2", "agent", "抱歉让您失望了", 1),
            message("m-3", "customer", "问题还是没解决", 2),
        ],
    )
    .await;
    assert!(body["messages"][0].get("trigger").is_none() && body["messages"][1].get("trigger").is_none());
    assert_eq!(body["action"]["reason"]["category"], "not_resolved");
    assert_eq!(body["action"]["reason"]["message_id"], "m-3");
    assert_eq!(body.get("alerts"), None);
    assert!(w.alerts().await.is_empty());
    let (_, human) = post(&w.app, &conv, &[message("m-4", "customer", "I want to talk to a real person", 3)]).await;
    assert_eq!(human["action"]["type"], "handoff_to_agent");
    assert_eq!(human["action"]["locale"], "en");
    assert_eq!(human["action"].get("form"), None);
}

#[tokio::test]
async fn a_complaint_that_asks_for_a_person_alerts_staff_and_hands_off() {
    let w = world().await;
    let conv = unique("c");
    let (status, body) = post(&w.app, &conv, &[message("m-1", "customer", "我要投诉，先给我接个人工", 0)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["trigger"]["category"], "complaint");
    assert_eq!(body["messages"][0]["trigger"]["also"]["category"], "want_human", "{body}");
    assert_eq!(body["action"]["type"], "handoff_to_agent");
    assert_eq!(body["action"]["reason"]["category"], "want_human");
    assert_eq!(body["alerts"][0]["category"], "complaint");
    assert_eq!(w.alerts().await.len(), 1);
    // The reply strategy reads both: handed to a person, and apologised to.
    let strategy = &body["strategy"];
    assert_eq!((&strategy["route"], &strategy["apologise"]), (&json!("agent"), &json!(true)), "{strategy}");
    let items = w.items(&conv).await;
    assert!(items.contains_key("TRIGGER#complaint") && items.contains_key("TRIGGER#want_human"), "{:?}", items.keys());

    // Of equal severity, the feeling leads wherever it stands and the request rides beside it:
    // handed over (not left with the bot) and apologised to (not answered briefly).
    for text in ["太失望了，转人工", "转人工，太失望了"] {
        let conv = unique("c");
        let (status, body) = post(&w.app, &conv, &[message("m-1", "customer", text, 0)]).await;
        assert_eq!(status, 200, "{body}");
        let trigger = &body["messages"][0]["trigger"];
        let categories = (&trigger["category"], &trigger["also"]["category"]);
        assert_eq!(categories, (&json!("dissatisfied"), &json!("want_human")), "{text}");
        assert_eq!(body["action"]["type"], "handoff_to_agent", "{text}");
        let strategy = &body["strategy"];
        assert_eq!((&strategy["route"], &strategy["apologise"]), (&json!("agent"), &json!(true)), "{text}: {strategy}");
        // Apologetic, or warm in the experiment's warm arm; never the brief hand-over tone.
        assert!(["apologetic", "warm"].contains(&strategy["tone"].as_str().unwrap()), "{text}: {strategy}");
        // Read later, from what the conversation raised so far: the same.
        let (status, later) = get_strategy(&w.app, &conv).await;
        assert_eq!(status, 200, "{later}");
        assert_eq!((&later["route"], &later["apologise"]), (&strategy["route"], &strategy["apologise"]), "{later}");
        let items = w.items(&conv).await;
        let keys: Vec<&String> = items.keys().collect();
        assert!(items.contains_key("TRIGGER#dissatisfied") && items.contains_key("TRIGGER#want_human"), "{keys:?}");
    }
}

#[tokio::test]
async fn a_category_raised_twice_in_one_batch_still_acts_on_its_first_message() {
    let w = world().await;
    let conv = unique("c");
    let batch = [message("m-1", "customer", "转人工", 0), message("m-2", "customer", "人工呢", 1)];
    let (status, body) = post(&w.app, &conv, &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"]["type"], "handoff_to_agent");
    assert_eq!(body["action"]["reason"]["message_id"], "m-1");
}

#[tokio::test]
async fn repeated_dissatisfaction_escalates_to_staff_once() {
    let w = world().await;
    let conv = unique("c");
    let texts = ["我对这个回答不满意", "问题还是没解决", "太失望了，转人工", "还是不行"];
    let mut answers = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let (status, body) = post(&w.app, &conv, &[message(&format!("m-{i}"), "customer", text, i as u32)]).await;
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    assert_eq!(answers[2]["action"]["reason"]["category"], "repeated_dissatisfaction");
    assert_eq!(answers[2]["action"]["type"], "handoff_to_agent");
    assert_eq!(answers[2]["alerts"][0]["status"], "sent");
    assert_eq!(answers[3]["action"], Value::Null);
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].attributes["category"], "repeated_dissatisfaction");
    let items = w.items(&conv).await;
    assert_eq!(items["META"]["triggering_message_ids"].as_ss().unwrap().len(), 4);
}

/// The third unhappy message is handed to a person: the answer's strategy says so too, on the
/// same request and afterwards (none of these messages asks for a person itself).
#[tokio::test]
async fn an_escalated_conversation_is_routed_to_an_agent_by_the_strategy_too() {
    let w = world().await;
    let conv = unique("c");
    let texts = ["我对这个回答不满意", "问题还是没解决", "太失望了"];
    let mut last = Value::Null;
    for (i, text) in texts.iter().enumerate() {
        let (status, body) = post(&w.app, &conv, &[message(&format!("m-{i}"), "customer", text, i as u32)]).await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(body["messages"][0]["trigger"]["category"], "want_human", "{body}");
        last = body;
    }
    assert_eq!(last["action"]["type"], "handoff_to_agent", "{last}");
    assert_eq!(last["action"]["reason"]["category"], "repeated_dissatisfaction", "{last}");
    let strategy = &last["strategy"];
    assert_eq!((&strategy["route"], &strategy["priority"]), (&json!("agent"), &json!("urgent")), "{strategy}");
    assert!(strategy["reasons"].as_array().unwrap().iter().any(|r| r["rule"] == "escalated"), "{strategy}");
    let (status, later) = get_strategy(&w.app, &conv).await;
    assert_eq!(status, 200, "{later}");
    assert_eq!((&later["route"], &later["priority"]), (&strategy["route"], &strategy["priority"]), "{later}");
}

/// DynamoDB refuses an item over 400 KB, which moto does not: a conversation that goes on and on
/// must not grow its records until every later call fails.
#[tokio::test]
async fn a_very_long_unhappy_conversation_keeps_its_records_small_and_every_call_succeeds() {
    let w = world().await;
    let conv = unique("c");
    for call in 0..6u32 {
        let batch: Vec<Value> = (0..50u32)
            .map(|i| {
                let n = call * 50 + i;
                let sent_at = format!("2026-11-01T08:{:02}:{:02}Z", n / 60, n % 60);
                let id = format!("m-{n:0>100}");
                if i % 2 == 0 {
                    json!({"message_id": id, "role": "customer", "text": "我要投诉", "sent_at": sent_at,
                           "customer_id": "u-1", "channel": "wechat"})
                } else {
                    json!({"message_id": id, "role": "bot", "text": "好的", "bot_intent": format!("intent-{n:0>100}"),
                           "sent_at": sent_at, "customer_id": "u-1", "channel": "wechat"})
                }
            })
            .collect();
        let (status, body) = post(&w.app, &conv, &batch).await;
        assert_eq!(status, 200, "call {call}: {body}");
    }
    // 150 triggering messages and 150 intents were sent; the sets stop at the bound (a request
    // adds at most its own batch past it).
    let items = w.items(&conv).await;
    let size = |item: &str, attribute: &str| items[item][attribute].as_ss().unwrap().len();
    assert!(size("META", "intents") < SET_MEMBERS_KEPT + 50, "{}", size("META", "intents"));
    assert!(size("META", "triggering_message_ids") < SET_MEMBERS_KEPT + 50);
    assert_eq!(size("TRIGGER#complaint", "message_ids"), SET_MEMBERS_KEPT);
}

#[tokio::test]
async fn concurrent_identical_requests_store_once_and_alert_once() {
    let w = world().await;
    let conv = unique("c");
    let batch = [message("m-1", "customer", "你们这是黑店，骗子！", 0)];
    let calls = (0..6).map(|_| post(&w.app, &conv, &batch));
    let answers = futures_util::future::join_all(calls).await;
    // A request that finds the alert claimed by another is told to retry (503): answered 200, an
    // alert whose holder died would never be sent.
    assert!(answers.iter().all(|(status, _)| *status == 200 || *status == 503), "{answers:?}");
    assert_eq!(w.alerts().await.len(), 1);
    for (status, _) in &answers {
        if *status == 503 {
            let (retry, body) = post(&w.app, &conv, &batch).await;
            assert_eq!((retry, &body["alerts"][0]["status"]), (200, &json!("already_sent")), "{body}");
        }
    }
    let stored: Vec<&Value> =
        answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| &b["messages"][0]["stored"]).collect();
    assert!(stored.iter().filter(|s| **s == "created").count() <= 1, "{stored:?}");
    assert_eq!(w.items(&conv).await.keys().filter(|k| k.starts_with("MSG#")).count(), 1, "stored once");
    assert_eq!(w.alerts().await.len(), 1);
}

#[tokio::test]
async fn a_conversation_belongs_to_one_customer() {
    let w = world().await;
    let conv = unique("c");
    assert_eq!(post(&w.app, &conv, &[message("m-1", "customer", "hi", 0)]).await.0, 200);
    let mut other = message("m-2", "customer", "hello", 1);
    other["customer_id"] = json!("u-2");
    let (status, body) = post(&w.app, &conv, &[other]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "urn:feedback-loop:problem:conversation-of-another-customer");
    assert!(!w.items(&conv).await.contains_key("MSG#m-2"));
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_stores_nothing() {
    let w = world().await;
    let conv = unique("c");
    let too_many: Vec<Value> = (0..51).map(|i| message(&format!("m-{i}"), "customer", "hi", 0)).collect();
    let long = message("m-1", "customer", &"差".repeat(4001), 0);
    // (body, extra headers, expected status, the field named)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (json!({"messages": too_many}).to_string(), vec![], 422, "messages"),
        (json!({"messages": [long]}).to_string(), vec![], 422, "messages[0].text"),
        ("{\"messages\": [".into(), vec![], 400, ""),
        (
            json!({"messages": [message("m-1", "customer", "hi", 0)]}).to_string(),
            vec![("content-type", "text/plain")],
            415,
            "",
        ),
    ];
    for (body, headers, expected, field) in cases {
        let (status, problem) = post_raw(&w.app, &conv, &body, &headers).await;
        assert_eq!(status, expected, "{problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if !field.is_empty() {
            assert_eq!(problem["invalid_params"][0]["field"], field);
        }
    }
    let (status, problem) = post(&w.app, "bad#id", &[message("m-1", "customer", "hi", 0)]).await;
    assert_eq!((status, &problem["invalid_params"][0]["field"]), (422, &json!("conversation_id")));
    assert!(w.items(&conv).await.is_empty());
}

#[tokio::test]
async fn an_alert_that_cannot_be_sent_fails_the_call_and_the_retry_sends_it() {
    let (dynamodb, table) = fresh_feedback_table().await;
    let (sns, _) = fresh_topic().await;
    let missing = format!("arn:aws:sns:us-east-1:123456789012:{}", unique("not-yet"));
    let app = App::new(dynamodb.clone(), sns.clone(), &missing, settings(&table));
    let conv = unique("c");
    let batch = [message("m-1", "customer", "我要起诉你们", 0)];
    let (status, problem) = post(&app, &conv, &batch).await;
    assert!(status >= 500, "{problem}");
    assert!(!problem["detail"].as_str().unwrap().contains("arn:"), "internals stay in the logs: {problem}");
    // The message was kept; the claim was released.
    let items = conversation_items(&dynamodb, &table, &conv).await;
    assert!(items.contains_key("MSG#m-1") && !items["TRIGGER#complaint"].contains_key("alert_lease_until"));
    let failure = items["TRIGGER#complaint"].get("alert_failure").and_then(|v| v.as_s().ok());
    assert!(failure.is_some_and(|f| !f.is_empty()), "the failure is kept on the trigger item");

    let name = missing.rsplit(':').next().unwrap();
    sns.create_topic().name(name).send().await.unwrap();
    let (status, body) = post(&app, &conv, &batch).await;
    assert_eq!((status, &body["alerts"][0]["status"]), (200, &json!("sent")), "{body}");
    assert_eq!(body["messages"][0]["stored"], "duplicate");
    assert_eq!(notifications(moto_url(), &missing).await.len(), 1);
}
