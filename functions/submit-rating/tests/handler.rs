//! The submit-rating handler, given real API Gateway (HTTP API, payload 2.0) events, against moto.

use feedback::config::RatingSettings;
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use submit_rating::App;
use testkit::{fresh_feedback_table, post_ratings_event, unique};

async fn app() -> (App, feedback_aws::dynamo::Client, String) {
    let (client, table) = fresh_feedback_table().await;
    let settings =
        RatingSettings { table_name: table.clone(), deeper_feedback_max_stars: 2, rating_retention_days: 730 };
    (App::new(client.clone(), settings), client, table)
}

async fn call(app: &App, body: &str, headers: &[(&str, &str)]) -> (u16, Value, Response<Body>) {
    let req = lambda_http::request::from_str(&post_ratings_event(body, headers)).expect("a valid API Gateway v2 event");
    let res = app.handle(req).await.unwrap();
    let json = serde_json::from_slice(res.body().as_ref()).unwrap_or(Value::Null);
    (res.status().as_u16(), json, res)
}

async fn stored_ratings(client: &feedback_aws::dynamo::Client, table: &str, conv: &str) -> usize {
    client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{conv}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .count as usize
}

#[tokio::test]
async fn a_valid_rating_is_stored_and_a_low_one_offers_deeper_feedback() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let body = json!({"conversation_id": conv, "customer_id": "u-7", "stars": 1, "comment": " 问题未解决 ", "channel": "app",
        "served_by": {"kind": "bot", "bot_intent": "refund_status"}, "locale": "zh-cn"});
    let (status, json, res) = call(&app, &body.to_string(), &[]).await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(res.headers()["content-type"], "application/json");
    assert!(json["id"].as_str().unwrap().len() == 26);
    assert_eq!(json["comment"], "问题未解决");
    assert_eq!(json["locale"], "zh-CN");
    assert_eq!(json["deeper_feedback"], json!({"offer": true, "reason": "low_stars"}));
    assert_eq!(stored_ratings(&client, &table, &conv).await, 1);

    let conv = unique("c");
    let (status, json, _) = call(
        &app,
        &json!({"conversation_id": conv, "customer_id": "u-7", "stars": 5, "channel": "web"}).to_string(),
        &[],
    )
    .await;
    assert_eq!((status, &json["deeper_feedback"]), (201, &json!({"offer": false})));
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_original_and_writes_nothing() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let body = json!({"conversation_id": conv, "customer_id": "u-1", "stars": 3, "channel": "web"}).to_string();
    let (s1, first, _) = call(&app, &body, &[("Idempotency-Key", "try-1")]).await;
    let (s2, second, res) = call(&app, &body, &[("Idempotency-Key", "try-1")]).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first, second, "the replay is the original answer");
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(stored_ratings(&client, &table, &conv).await, 1);

    let changed = json!({"conversation_id": conv, "customer_id": "u-1", "stars": 4, "channel": "web"}).to_string();
    let (status, problem, _) = call(&app, &changed, &[("Idempotency-Key", "try-1")]).await;
    assert_eq!((status, problem["type"].as_str()), (422, Some("urn:feedback-loop:problem:idempotency-key-reused")));
}

#[tokio::test]
async fn a_different_second_rating_for_the_same_conversation_is_a_409() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    let (s, first, _) = call(
        &app,
        &json!({"conversation_id": conv, "customer_id": "u-1", "stars": 5, "channel": "web"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(s, 201);
    let (status, problem, res) = call(
        &app,
        &json!({"conversation_id": conv, "customer_id": "u-1", "stars": 1, "channel": "web"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().contains(first["id"].as_str().unwrap()));
    assert_eq!(stored_ratings(&client, &table, &conv).await, 1);
}

#[tokio::test]
async fn every_kind_of_bad_input_is_a_4xx_problem_and_writes_nothing() {
    let (app, client, table) = app().await;
    let conv = unique("c");
    // (body, extra headers, expected status, expected problem type)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("{\"stars\":".into(), vec![], 400, "malformed-json"),
        ("[]".into(), vec![], 400, "malformed-json"),
        ("".into(), vec![], 400, "malformed-json"),
        (json!({"conversation_id": conv, "customer_id": "u", "stars": 6, "channel": "web"}).to_string(), vec![], 422, "validation-failed"),
        (json!({"conversation_id": conv, "customer_id": "u", "stars": 4, "channel": "web", "star": 4}).to_string(), vec![], 422, "validation-failed"),
        (json!({"conversation_id": conv, "customer_id": "u", "stars": 4, "channel": "web", "comment": "x".repeat(2001)}).to_string(), vec![], 422, "validation-failed"),
        (json!({"conversation_id": conv, "customer_id": "u", "stars": 4, "channel": "web"}).to_string(), vec![("content-type", "text/plain")], 415, "unsupported-media-type"),
        (json!({"conversation_id": conv, "customer_id": "u", "stars": 4, "channel": "web"}).to_string(), vec![("Idempotency-Key", "has space")], 400, "bad-header"),
        (format!("{{\"comment\":\"{}\"}}", "x".repeat(17 * 1024)), vec![], 413, "too-large"),
    ];
    for (body, headers, want_status, want_type) in cases {
        let (status, problem, res) = call(&app, &body, &headers).await;
        assert_eq!(status, want_status, "{problem}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert_eq!(problem["type"], format!("urn:feedback-loop:problem:{want_type}"));
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if status == 422 {
            assert!(
                problem["invalid_params"][0]["field"].is_string() && problem["invalid_params"][0]["rule"].is_string()
            );
        }
    }
    assert_eq!(stored_ratings(&client, &table, &conv).await, 0);
}
