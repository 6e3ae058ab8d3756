//! Order events from the bus against moto: folded into the profile once, however often delivered;
//! an event that does not read is refused without failing the invocation.

use feedback::customers::ProfileStore;
use feedback_aws::dynamo::DynamoProfileStore;
use order_bus::App;
use serde_json::json;
use testkit::{fresh_feedback_table, unique};

#[tokio::test]
async fn bus_events_fold_into_the_profile_once_and_bad_ones_are_refused() {
    let (client, table) = fresh_feedback_table().await;
    let app = App::new(client.clone(), &table);
    let customer = unique("u");
    let event = json!({
        "version": "0", "id": "bus-1", "detail-type": "order event", "source": "shop.orders",
        "account": "123456789012", "time": "2026-11-25T02:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"event_id": format!("{customer}-e1"), "type": "placed", "order_id": "o-1", "customer_id": customer,
                   "at": "2026-11-25T02:00:00Z", "total": 88.0, "currency": "CNY"}
    });
    assert_eq!(app.handle(event.clone()).await.unwrap()["result"], "applied");
    assert_eq!(app.handle(event).await.unwrap()["result"], "duplicate", "EventBridge delivers at least once");
    let profile = DynamoProfileStore::new(client, &table).profile(&customer).await.unwrap().unwrap();
    assert_eq!((profile.profile.order_count, profile.profile.order_total_minor), (1, 8_800));

    let bad = json!({"id": "bus-2", "detail": {"event_id": "x", "type": "teleported"}});
    let answer = app.handle(bad).await.unwrap();
    assert_eq!(answer["result"], "refused");
    assert!(answer["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("events[0].type")));
}
