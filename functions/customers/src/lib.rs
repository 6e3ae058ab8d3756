//! `POST /orders/events`: order events from the storefront fold into customer profiles, each event
//! once. `GET /customers/{id}/profile`: the profile as the chatbot reads it (one GetItem).
//! Thin: parse → domain → map.

use std::convert::Infallible;

use feedback::Timestamp;
use feedback::config::{ConfigError, Env};
use feedback::customers::orders::{ORDER_BODY_MAX_BYTES, parse_order_events};
use feedback::customers::{ProfileStore, TierSettings, record_order_events};
use feedback::validate::{InputError, check_id};
use feedback_aws::dynamo::{self, DynamoProfileStore};
use feedback_lambda::http::{json_body, json_response, path_parameter, refused, request_reference};
use feedback_lambda::problem::Problem;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde_json::json;

pub struct App {
    store: DynamoProfileStore,
    tiers: TierSettings,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let table = env.required("TABLE_NAME")?;
        let tiers = TierSettings::from_env(&env)?;
        let client = dynamo::warm_client(&table).await;
        Ok(Self::new(client, &table, tiers))
    }

    pub fn new(client: dynamo::Client, table: &str, tiers: TierSettings) -> Self {
        App { store: DynamoProfileStore::new(client, table), tiers }
    }

    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let reference = request_reference(&req);
        let now = Timestamp::now();
        if req.method() == Method::POST {
            let events = match json_body(&req, ORDER_BODY_MAX_BYTES).and_then(|body| parse_order_events(body, now)) {
                Ok(events) => events,
                Err(e) => return Ok(refused(&Problem::from(e), &"invalid order events", "order events")),
            };
            return Ok(match record_order_events(&self.store, &events, now).await {
                Ok(outcomes) => {
                    let applied =
                        outcomes.iter().filter(|(_, o)| *o == feedback::customers::EventOutcome::Applied).count();
                    tracing::info!(received = events.len(), applied, "order events recorded");
                    let results: Vec<_> =
                        outcomes.iter().map(|(id, outcome)| json!({"event_id": id, "result": outcome})).collect();
                    json_response(200, &json!({ "results": results }), &[])
                }
                Err(e) => refused(&Problem::from_store(&e, &reference), &e, "order events"),
            });
        }
        let customer_id = match check_id("customer_id", path_parameter(&req, "id").as_deref().unwrap_or("")) {
            Ok(id) => id,
            Err(e) => return Ok(refused(&Problem::from(InputError::Invalid(vec![e])), &"invalid id", "profile")),
        };
        Ok(match self.store.profile(&customer_id).await {
            Ok(Some(read)) => {
                let mut view = read.profile.view(&self.tiers, now);
                view.contact = read.contact;
                json_response(200, &view, &[("cache-control", "no-store")])
            }
            Ok(None) => {
                let p = Problem::new(
                    404,
                    "unknown-customer",
                    "No profile for this customer",
                    format!("Neither an order event nor contact details were recorded for customer {customer_id}"),
                );
                refused(&p, &"unknown customer", "profile")
            }
            Err(e) => refused(&Problem::from_store(&e, &reference), &e, "profile"),
        })
    }
}
