//! The whole system as the chat platform sees it: the real local runner (moto, tables from
//! template.yaml, the authorizer and submit-rating binaries behind the local API Gateway) over HTTP.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use testkit::{Reply, RunningSystem, send, unique};

const KEY: &str = "Bearer dev-local-key";

async fn post(sys: &RunningSystem, body: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("authorization", KEY), ("content-type", "application/json")];
    headers.extend_from_slice(extra);
    send("POST", &format!("{}/ratings", sys.base_url), &headers, body.to_owned()).await.unwrap()
}

async fn ratings_of(sys: &RunningSystem, conv: &str) -> i32 {
    sys.dynamodb()
        .await
        .query()
        .table_name("FeedbackTable")
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CONV#{conv}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .count
}

fn rating(conv: &str, stars: u8) -> String {
    json!({"conversation_id": conv, "customer_id": "u-42", "stars": stars, "comment": "客服很耐心", "channel": "wechat"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chat_platform_rates_a_conversation_through_the_local_system() {
    let sys = RunningSystem::start();

    // A valid rating lands in DynamoDB.
    let conv = unique("c");
    let created = post(&sys, &rating(&conv, 4), &[("idempotency-key", "k-1")]).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.json()["stars"], 4);
    assert_eq!(ratings_of(&sys, &conv).await, 1);

    // The retry is answered with the original; nothing more is stored.
    let retry = post(&sys, &rating(&conv, 4), &[("idempotency-key", "k-1")]).await;
    assert_eq!((retry.status, retry.json()), (201, created.json()));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));

    // A different rating for the same conversation is a conflict.
    let conflict = post(&sys, &rating(&conv, 1), &[]).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.header("content-type"), Some("application/problem+json"));
    assert_eq!(ratings_of(&sys, &conv).await, 1);

    // Each kind of bad input: the right 4xx, a problem body, nothing written.
    let bad = unique("c");
    // (body, extra headers, expected status)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        ("{not json".into(), vec![], 400),
        (json!({"conversation_id": bad, "customer_id": "u", "stars": 0, "channel": "web"}).to_string(), vec![], 422),
        (
            json!({"conversation_id": bad, "customer_id": "u", "stars": 3, "channel": "carrier-pigeon"}).to_string(),
            vec![],
            422,
        ),
        (
            json!({"conversation_id": "has space", "customer_id": "u", "stars": 3, "channel": "web"}).to_string(),
            vec![],
            422,
        ),
        (rating(&bad, 3), vec![("content-type", "text/plain")], 415),
        (rating(&bad, 3), vec![("idempotency-key", "")], 400),
    ];
    for (body, extra, want) in cases {
        let mut headers: Vec<(&str, &str)> = vec![("authorization", KEY)];
        if !extra.iter().any(|(k, _)| *k == "content-type") {
            headers.push(("content-type", "application/json"));
        }
        headers.extend(extra.iter().copied());
        let reply = send("POST", &format!("{}/ratings", sys.base_url), &headers, body.clone()).await.unwrap();
        assert_eq!(reply.status, want, "{body} -> {:?}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
        let problem: Value = reply.json();
        assert!(problem["type"].as_str().unwrap().starts_with("urn:feedback-loop:problem:"));
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    assert_eq!(ratings_of(&sys, &bad).await, 0);

    // Without credentials, or with forged ones, the gateway refuses and nothing is written.
    let intruder = unique("c");
    let none = send(
        "POST",
        &format!("{}/ratings", sys.base_url),
        &[("content-type", "application/json")],
        rating(&intruder, 5),
    )
    .await
    .unwrap();
    assert_eq!(none.status, 401);
    let forged = send(
        "POST",
        &format!("{}/ratings", sys.base_url),
        &[("authorization", "Bearer stolen-guess"), ("content-type", "application/json")],
        rating(&intruder, 5),
    )
    .await
    .unwrap();
    assert_eq!(forged.status, 403);
    assert_eq!(ratings_of(&sys, &intruder).await, 0);

    // Routes the template does not declare are API Gateway's 404.
    let missing = send("GET", &format!("{}/ratings", sys.base_url), &[("authorization", KEY)], "").await.unwrap();
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_requests_store_one_rating() {
    let sys = RunningSystem::start();
    let conv = unique("c");
    let body = rating(&conv, 2);
    let replies = futures_join((0..8).map(|_| {
        let body = body.clone();
        let url = format!("{}/ratings", sys.base_url);
        tokio::spawn(async move {
            send("POST", &url, &[("authorization", KEY), ("content-type", "application/json")], body).await.unwrap()
        })
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{:?}", r.body);
            r.json()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(replies.iter().filter(|r| r.header("idempotent-replayed").is_none()).count(), 1);
    assert_eq!(ratings_of(&sys, &conv).await, 1);
}

async fn futures_join(tasks: impl Iterator<Item = tokio::task::JoinHandle<Reply>>) -> Vec<Reply> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}
