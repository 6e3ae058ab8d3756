//! The customer-contact handler, given real API Gateway (HTTP API, payload 2.0) events, against moto.

use aws_sdk_dynamodb::types::AttributeValue;
use customer_contact::App;
use serde_json::{Value, json};
use testkit::{api_event, fresh_feedback_table, unique};

async fn put(app: &App, customer: &str, body: Value) -> (u16, Value) {
    let path = format!("/customers/{customer}/contact");
    let event = api_event("PUT /customers/{id}/contact", &path, &[("id", customer)], &body.to_string(), &[]);
    let res = app.handle(lambda_http::request::from_str(&event).unwrap()).await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(res.body().as_ref()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn contact_details_are_stored_once_per_customer_and_answered_masked() {
    let (client, table) = fresh_feedback_table().await;
    let app = App::new(client.clone(), &table);
    let customer = unique("u");
    let body = json!({"email": "li.lei@Example.com", "phone": "+86 138 1234 5678",
        "consent": {"email": true, "sms": true}, "time_zone": "Asia/Shanghai", "locale": "zh-CN"});
    let (status, answer) = put(&app, &customer, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["email"], "l***@example.com");
    assert_eq!(answer["phone"], "+86*******5678");
    let (status, _) = put(
        &app,
        &customer,
        json!({"email": "new@example.com", "consent": {"email": false, "sms": false},
        "time_zone": "Europe/London", "locale": "en-GB"}),
    )
    .await;
    assert_eq!(status, 200);
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("CUST#{customer}")))
        .key("sk", AttributeValue::S("CONTACT".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["email"].as_s().unwrap(), "new@example.com");
    assert!(!item.contains_key("phone"), "the newer details replace the older ones");
    assert_eq!(item["time_zone"].as_s().unwrap(), "Europe/London");
}

#[tokio::test]
async fn invalid_details_are_a_422_naming_fields_without_echoing_them() {
    let (client, table) = fresh_feedback_table().await;
    let app = App::new(client, &table);
    let (status, problem) = put(
        &app,
        &unique("u"),
        json!({"email": "li.lei(at)example", "phone": "138",
        "consent": {"email": true, "sms": true}, "time_zone": "Mars/Olympus", "locale": "zh-CN"}),
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> =
        problem["invalid_params"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "phone", "time_zone"]);
    assert!(!problem.to_string().contains("li.lei"), "{problem}");
    let (status, _) = put(&app, "bad#id", json!({})).await;
    assert_eq!(status, 422);
}
