//! The follow-up as a person would watch it locally: contact details and an unresolved
//! conversation through the API, then the schedule fired at a chosen time through the runner.

use serde_json::{Value, json};
use testkit::{RunningSystem, send, unique};

const KEY: &str = "Bearer dev-local-key";

async fn call(sys: &RunningSystem, method: &str, path: &str, body: Value) -> (u16, Value) {
    let headers = [("authorization", KEY), ("content-type", "application/json")];
    let reply = send(method, &format!("{}{path}", sys.base_url), &headers, body.to_string()).await.unwrap();
    (reply.status, reply.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn firing_the_schedule_sends_the_follow_up_of_an_unresolved_conversation() {
    let sys = RunningSystem::start();
    let customer = unique("u");
    let email = format!("{customer}@example.com");
    let (status, body) = call(
        &sys,
        "PUT",
        &format!("/customers/{customer}/contact"),
        json!({
        "email": email, "consent": {"email": true, "sms": false}, "time_zone": "Asia/Shanghai", "locale": "zh-CN"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let conv = unique("c");
    let (status, body) = call(
        &sys,
        "POST",
        &format!("/conversations/{conv}/close"),
        json!({
        "resolved": false, "closed_at": "2026-11-01T09:00:00+08:00", "customer_id": customer}),
    )
    .await;
    assert_eq!((status, &body["follow_up"]["state"]), (200, &json!("scheduled")), "{body}");

    let fire = |time: &str| {
        let url = format!("{}/_local/schedules/FollowUpSchedule?time={time}", sys.base_url);
        async move { send("POST", &url, &[], "").await.unwrap() }
    };
    let early = fire("2026-11-01T12:00:00Z").await;
    assert_eq!((early.status, &early.json()["sent"]), (200, &json!(0)), "{:?}", early.json());
    let run = fire("2026-11-02T02:00:00Z").await;
    assert_eq!(run.status, 200, "{:?}", run.json());
    assert_eq!(run.json()["sent"], 1, "{:?}", run.json());

    let (_, data) = infra::http::get(&format!("{}/moto-api/data.json", sys.moto_url)).await.unwrap();
    let data: Value = serde_json::from_slice(&data).unwrap();
    let mails: Vec<&str> = data["ses"]["RawMessage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["raw_data"].as_str())
        .filter(|raw| raw.contains(&email))
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains(&format!("List-Unsubscribe: <{}/u/", sys.base_url)), "links point at the local API");
    let unknown = send("POST", &format!("{}/_local/schedules/Nope", sys.base_url), &[], "").await.unwrap();
    assert_eq!(unknown.status, 404);
}
