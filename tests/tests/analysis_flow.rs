//! Feedback posted to the real local runner is analysed through the table's stream (the runner
//! plays the event source mapping) within seconds, and counted in the week's aggregates.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use testkit::{RunningSystem, send, unique};

const KEY: &str = "Bearer dev-local-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_posted_rating_is_analysed_within_seconds() {
    let sys = RunningSystem::start();
    let conv = unique("c");
    let headers = [("authorization", KEY), ("content-type", "application/json")];
    let rating = json!({"conversation_id": conv, "customer_id": "u-77", "stars": 1, "channel": "app",
                        "comment": "快递一个星期都没到，客服也不回复"});
    let reply = send("POST", &format!("{}/ratings", sys.base_url), &headers, rating.to_string()).await.unwrap();
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let started = Instant::now();

    let dynamodb = sys.dynamodb().await;
    let analysis = loop {
        let item = dynamodb
            .get_item()
            .table_name("FeedbackTable")
            .key("pk", AttributeValue::S(format!("CONV#{conv}")))
            .key("sk", AttributeValue::S("RATING".into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        if let Some(a) = item.get("analysis") {
            break a.as_m().unwrap().clone();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "not analysed after 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("analysed after {:?}", started.elapsed());
    assert_eq!(analysis["sentiment"].as_m().unwrap()["label"].as_s().unwrap(), "negative");
    let week = analysis["week"].as_s().unwrap().clone();
    let types: Vec<&str> =
        analysis["counted_types"].as_l().unwrap().iter().map(|t| t.as_s().unwrap().as_str()).collect();
    assert!(types.contains(&"logistics"), "{types:?}");

    // Counted once in the week's totals, on the customer's shard.
    let mut items = 0;
    for shard in 0..8 {
        let out = dynamodb
            .get_item()
            .table_name("FeedbackTable")
            .key("pk", AttributeValue::S(format!("AGG#{week}#SHARD#{shard}")))
            .key("sk", AttributeValue::S("TYPE#_all".into()))
            .send()
            .await
            .unwrap();
        items += out
            .item
            .and_then(|i| i.get("items").and_then(|v| v.as_n().ok()).map(|n| n.parse::<i32>().unwrap()))
            .unwrap_or(0);
    }
    assert_eq!(items, 1);
    let listing = send("GET", &format!("{}/_local/", sys.base_url), &[], "").await.unwrap().json();
    // The table's one stream, read by two event source mappings (the analysis and the profiles).
    let streams = listing["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{listing}");
    assert!(streams.iter().all(|s| s == &streams[0] && s.as_str().unwrap().contains("table/FeedbackTable/stream")));
}
