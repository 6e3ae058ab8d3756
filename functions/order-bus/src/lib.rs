//! Order events from the shop's EventBridge bus: each event's `detail` is one order event, in the
//! shape `POST /orders/events` takes. Parse → `record_order_events` → a summary. An event that
//! does not read is logged and dropped (a retry reads it no better); a storage failure fails the
//! invocation, so EventBridge's asynchronous invocation retries it and then hands it to the
//! failure queue. Recording is idempotent by `event_id`, so a redelivery changes nothing.

use feedback::Timestamp;
use feedback::config::{ConfigError, Env};
use feedback::customers::orders::parse_order_events;
use feedback::customers::record_order_events;
use feedback::errors::StoreError;
use feedback::validate::InputError;
use feedback_aws::dynamo::{self, DynamoProfileStore};
use serde_json::{Value, json};

pub struct App {
    store: DynamoProfileStore,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = Env::process().required("TABLE_NAME")?;
        let client = dynamo::warm_client(&table).await;
        Ok(Self::new(client, &table))
    }

    pub fn new(client: dynamo::Client, table: &str) -> Self {
        App { store: DynamoProfileStore::new(client, table) }
    }

    pub async fn handle(&self, event: Value) -> Result<Value, StoreError> {
        let now = Timestamp::now();
        let body = json!({ "events": [event["detail"].clone()] }).to_string();
        let events = match parse_order_events(body.as_bytes(), now) {
            Ok(events) => events,
            Err(e) => {
                let problems: Vec<String> = match &e {
                    InputError::Invalid(errors) => errors.iter().map(|f| format!("{} ({})", f.field, f.rule)).collect(),
                    other => vec![other.to_string()],
                };
                tracing::warn!(bus_event = %event["id"], ?problems, "order event from the bus refused");
                return Ok(json!({ "result": "refused", "problems": problems }));
            }
        };
        let outcomes = record_order_events(&self.store, &events, now).await?;
        let (event_id, outcome) = &outcomes[0];
        tracing::info!(%event_id, ?outcome, "order event from the bus");
        Ok(json!({ "event_id": event_id, "result": outcome }))
    }
}
