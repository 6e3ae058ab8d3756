//! `POST /conversations/{id}/messages`: parse the batch, record it and react to triggers, answer
//! with the reply strategy. `GET /conversations/{id}/strategy`: the strategy now.
//! `POST /conversations/{id}/offer`: what the storefront did with the strategy's offer.
//! Each: parse → domain → map.

use std::convert::Infallible;

use feedback::Timestamp;
use feedback::analysis::triggers::TriggerRules;
use feedback::config::{ConfigError, ConversationSettings, Env};
use feedback::conversations::intake::{AlertStatus, IntakeSettings, record_messages};
use feedback::conversations::store::MessageStored;
use feedback::conversations::{MESSAGES_BODY_MAX_BYTES, MessageBatch, check_conversation_id};
use feedback::customers::offers::{OFFER_BODY_MAX_BYTES, OfferReport, report_offer};
use feedback::customers::strategy::{Asked, StrategySettings, conversation_strategy, strategy_for};
use feedback::validate::InputError;
use feedback_aws::dynamo::{self, DynamoConversationStore, DynamoOfferStore, DynamoProfileStore};
use feedback_aws::notify::SnsStaffAlerts;
use feedback_lambda::http::{json_body, json_response, path_parameter, problem_response, refused, request_reference};
use feedback_lambda::init::build_while_connecting;
use feedback_lambda::observe::emit_metrics;
use feedback_lambda::problem::Problem;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

pub struct App {
    store: DynamoConversationStore,
    profiles: DynamoProfileStore,
    offers: DynamoOfferStore,
    strategy: StrategySettings,
    alerts: SnsStaffAlerts,
    settings: IntakeSettings,
    rules: &'static TriggerRules,
}

impl App {
    /// Cold-start initialisation: settings, the rule table, one client per service, a warm connection.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let settings = ConversationSettings::from_env(&env)?;
        let topic = env.required("STAFF_ALERTS_TOPIC_ARN")?;
        let strategy = StrategySettings::from_env(&env)?;
        // The rule table is built while the connection warms; `new` then finds it built.
        let (_, (config, dynamodb)) = build_while_connecting(TriggerRules::builtin, async {
            let config = feedback_aws::sdk::sdk_config().await;
            let dynamodb = feedback_aws::sdk::dynamodb_client(&config);
            dynamo::warm_up(&dynamodb, &settings.table_name).await;
            (config, dynamodb)
        })
        .await;
        Ok(Self::new(dynamodb, feedback_aws::sdk::sns_client(&config), &topic, settings).with_strategy(strategy))
    }

    /// Tiers and the offers' guard rails (default: `StrategySettings::default()`).
    pub fn with_strategy(mut self, strategy: StrategySettings) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn new(
        dynamodb: feedback_aws::dynamo::Client,
        sns: feedback_aws::notify::SnsClient,
        topic_arn: &str,
        settings: ConversationSettings,
    ) -> Self {
        App {
            profiles: DynamoProfileStore::new(dynamodb.clone(), &settings.table_name),
            offers: DynamoOfferStore::new(dynamodb.clone(), &settings.table_name, settings.weeks.aggregate_shards),
            strategy: StrategySettings { shop_time_zone: settings.weeks.shop_time_zone.clone(), ..Default::default() },
            store: DynamoConversationStore::new(dynamodb, &settings.table_name, settings.retention_days),
            alerts: SnsStaffAlerts::new(sns, topic_arn).in_locale(settings.staff_locale),
            settings: settings.intake,
            rules: TriggerRules::builtin(),
        }
    }

    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let reference = request_reference(&req);
        let now = Timestamp::now();
        if req.method() == Method::GET {
            return Ok(self.strategy(&req, &reference, now).await);
        }
        if req.uri().path().trim_end_matches('/').ends_with("/offer") {
            return Ok(self.offer(&req, &reference, now).await);
        }
        let batch = match read_batch(&req, now) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::info!(rejected = %e, "message batch rejected");
                return Ok(problem_response(&Problem::from(e)));
            }
        };
        let conversation_id = batch.conversation_id.clone();
        let customer_id = batch.customer_id.clone();
        // The strategy as of the batch's last message (a late delivery or a backfill is judged,
        // and its offer budgeted, in the week it was written), never later than now.
        let as_of = batch.messages.iter().map(|m| m.sent_at).max().unwrap_or(now).min(now);
        match record_messages(&self.store, &self.alerts, self.rules, &self.settings, batch, now).await {
            Ok(recorded) => {
                let created = recorded.messages.iter().filter(|m| m.stored == MessageStored::Created).count();
                let conflicts = recorded.messages.iter().filter(|m| m.stored == MessageStored::Conflict).count();
                let fired = recorded.messages.iter().filter(|m| m.trigger.is_some()).count();
                let alerted = recorded.alerts.iter().filter(|a| a.status == AlertStatus::Sent).count();
                tracing::info!(
                    conversation_id = %conversation_id, received = recorded.messages.len(), created, conflicts, fired, alerted,
                    action = ?recorded.action.as_ref().map(|a| (a.kind, a.reason.category.as_str())), "messages recorded"
                );
                emit_metrics(
                    &[("Function", "keyword-intake")],
                    &[
                        ("MessagesStored", created as f64, "Count"),
                        ("TriggersFired", fired as f64, "Count"),
                        ("StaffAlertsSent", alerted as f64, "Count"),
                    ],
                );
                // How the chatbot should answer: the customer's profile and every category this
                // batch raised, the escalation included (a complaint that asks for a person is
                // handed over and apologised for; the profile read failing only leaves it out of
                // the decision).
                let raised: Vec<_> = recorded.raised.iter().map(|(c, s)| (c.as_str(), *s)).collect();
                let asked = Asked {
                    conversation_id: &conversation_id,
                    customer_id: Some(&customer_id),
                    raised: &raised,
                    at: as_of,
                    now,
                    decide_offer: true,
                };
                let strategy = strategy_for(&self.profiles, &self.offers, &self.strategy, asked).await;
                let mut answer = serde_json::to_value(&recorded).unwrap_or_default();
                answer["strategy"] = serde_json::to_value(&strategy).unwrap_or_default();
                Ok(json_response(200, &answer, &[]))
            }
            Err(e) => {
                let _span = tracing::info_span!("messages", conversation_id = %conversation_id).entered();
                Ok(refused(&Problem::from_intake(&e, &reference), &e, "message batch"))
            }
        }
    }
}

impl App {
    /// `GET /conversations/{id}/strategy`.
    async fn strategy(&self, req: &Request, reference: &str, now: Timestamp) -> Response<Body> {
        let conversation_id = match check_conversation_id(path_parameter(req, "id").as_deref()) {
            Ok(id) => id,
            Err(e) => return problem_response(&Problem::from(e)),
        };
        match conversation_strategy(&self.store, &self.profiles, &self.offers, &self.strategy, &conversation_id, now)
            .await
        {
            Ok(Some(strategy)) => json_response(200, &strategy, &[("cache-control", "no-store")]),
            Ok(None) => refused(
                &Problem::new(
                    404,
                    "unknown-conversation",
                    "No such conversation",
                    format!("No message was recorded for conversation {conversation_id}"),
                ),
                &"unknown conversation",
                "strategy",
            ),
            Err(e) => refused(&Problem::from_store(&e, reference), &e, "strategy"),
        }
    }
}

impl App {
    /// `POST /conversations/{id}/offer`.
    async fn offer(&self, req: &Request, reference: &str, now: Timestamp) -> Response<Body> {
        let conversation_id = match check_conversation_id(path_parameter(req, "id").as_deref()) {
            Ok(id) => id,
            Err(e) => return problem_response(&Problem::from(e)),
        };
        let report = match json_body(req, OFFER_BODY_MAX_BYTES).and_then(OfferReport::from_json) {
            Ok(r) => r,
            Err(e) => return refused(&Problem::from(e), &"invalid offer report", "offer"),
        };
        match report_offer(&self.offers, &conversation_id, report, now).await {
            Ok(offer) => {
                tracing::info!(conversation_id = %conversation_id, state = ?offer.state, "offer reported");
                json_response(200, &serde_json::json!({ "conversation_id": conversation_id, "offer": offer }), &[])
            }
            Err(e) => refused(&Problem::from_offer_report(&e, &conversation_id, reference), &format!("{e:?}"), "offer"),
        }
    }
}

fn read_batch(req: &Request, now: Timestamp) -> Result<MessageBatch, InputError> {
    let conversation_id = check_conversation_id(path_parameter(req, "id").as_deref())?;
    MessageBatch::from_json(conversation_id, json_body(req, MESSAGES_BODY_MAX_BYTES)?, now)
}
