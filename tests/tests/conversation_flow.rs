//! A conversation as the chat platform drives it through the real local runner over HTTP:
//! messages in, a complaint alerting staff (read back from moto through `/_local/notifications`),
//! then the close that queues a follow-up.

use serde_json::{Value, json};
use testkit::{RunningSystem, send, unique};

const KEY: &str = "Bearer dev-local-key";

async fn post(sys: &RunningSystem, path: &str, body: Value) -> (u16, Value) {
    let headers = [("authorization", KEY), ("content-type", "application/json")];
    let reply = send("POST", &format!("{}{path}", sys.base_url), &headers, body.to_string()).await.unwrap();
    (reply.status, reply.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_complaint_in_chat_reaches_staff_and_the_unresolved_close_queues_a_follow_up() {
    let sys = RunningSystem::start();
    let conv = unique("c");
    let messages = format!("/conversations/{conv}/messages");
    let msg = |id: &str, role: &str, text: &str| {
        json!({"message_id": id, "role": role, "text": text, "sent_at": "2026-11-01T08:00:00+08:00",
               "customer_id": "u-42", "channel": "app"})
    };

    let (status, body) =
        post(&sys, &messages, json!({"messages": [msg("m-1", "customer", "你好，我想查一下订单到哪了")]})).await;
    assert_eq!((status, &body["action"]), (200, &Value::Null), "{body}");
    let (status, body) = post(
        &sys,
        &messages,
        json!({"messages": [msg("m-2", "bot", "抱歉，正在为您查询"), msg("m-3", "customer", "我要投诉！！邮箱 a.b@example.com")]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"]["type"], "open_feedback_form");
    assert_eq!(body["action"]["reason"]["category"], "complaint");
    assert_eq!(body["alerts"][0]["status"], "sent");

    let listing = send("GET", &format!("{}/_local/notifications", sys.base_url), &[], "").await.unwrap().json();
    let sent = listing["notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{listing}");
    let text = sent[0]["message"].as_str().unwrap();
    assert!(text.contains(&conv) && text.contains("[email]") && !text.contains("a.b@example.com"), "{text}");
    assert!(sent[0]["topic_arn"].as_str().unwrap().ends_with(":StaffAlertsTopic"));

    // Closed two days ago (recent enough to be followed up): due a day later.
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let day = |back: i64| today.checked_sub(jiff::Span::new().days(back)).unwrap();
    let (status, body) = post(
        &sys,
        &format!("/conversations/{conv}/close"),
        json!({"resolved": false, "closed_at": format!("{}T00:10:00Z", day(2))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["follow_up"], json!({"state": "scheduled", "due_at": format!("{}T00:10:00Z", day(1))}));

    // Without the caller key nothing gets in.
    let reply = send("POST", &format!("{}{messages}", sys.base_url), &[("content-type", "application/json")], "{}")
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
}
