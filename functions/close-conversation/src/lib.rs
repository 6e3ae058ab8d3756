//! `POST /conversations/{id}/close`: parse the closing, close the conversation (queueing the
//! follow-up of an unresolved one), map the outcome. Nothing else.

use std::convert::Infallible;

use feedback::Timestamp;
use feedback::config::{ConfigError, ConversationSettings, Env};
use feedback::conversations::intake::{CloseSettings, close_conversation};
use feedback::conversations::{CLOSE_BODY_MAX_BYTES, Closing, check_conversation_id};
use feedback::validate::InputError;
use feedback_aws::dynamo::{self, DynamoConversationStore};
use feedback_lambda::http::{json_body, json_response, path_parameter, problem_response, refused, request_reference};
use feedback_lambda::observe::emit_metrics;
use feedback_lambda::problem::Problem;
use lambda_http::{Body, Request, Response};

pub struct App {
    store: DynamoConversationStore,
    settings: CloseSettings,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let settings = ConversationSettings::from_env(&Env::process())?;
        let client = dynamo::warm_client(&settings.table_name).await;
        Ok(Self::new(client, settings))
    }

    pub fn new(client: feedback_aws::dynamo::Client, settings: ConversationSettings) -> Self {
        App {
            store: DynamoConversationStore::new(client, &settings.table_name, settings.retention_days)
                .with_weeks(settings.weeks),
            settings: settings.close,
        }
    }

    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let reference = request_reference(&req);
        let now = Timestamp::now();
        let closing = match read_closing(&req, now) {
            Ok(closing) => closing,
            Err(e) => {
                tracing::info!(rejected = %e, "closing rejected");
                return Ok(problem_response(&Problem::from(e)));
            }
        };
        let conversation_id = closing.conversation_id.clone();
        match close_conversation(&self.store, &self.settings, closing, now).await {
            Ok(closed) => {
                tracing::info!(
                    conversation_id = %conversation_id, resolved = closed.resolved,
                    follow_up = ?closed.follow_up.state, "conversation closed"
                );
                let resolved = if closed.resolved { 1.0 } else { 0.0 };
                emit_metrics(
                    &[("Function", "close-conversation")],
                    &[("ConversationsClosed", 1.0, "Count"), ("ConversationsResolved", resolved, "Count")],
                );
                Ok(json_response(200, &closed, &[]))
            }
            Err(e) => {
                let _span = tracing::info_span!("close", conversation_id = %conversation_id).entered();
                Ok(refused(&Problem::from_intake(&e, &reference), &e, "closing"))
            }
        }
    }
}

fn read_closing(req: &Request, now: Timestamp) -> Result<Closing, InputError> {
    let conversation_id = check_conversation_id(path_parameter(req, "id").as_deref())?;
    Closing::from_json(conversation_id, json_body(req, CLOSE_BODY_MAX_BYTES)?, now)
}
