//! `POST /ratings`: parse the request, submit the rating, map the outcome. Nothing else.

use std::convert::Infallible;

use feedback::Timestamp;
use feedback::config::{ConfigError, Env, RatingSettings};
use feedback::ratings::{RatingReceipt, Submitted, submit_rating};
use feedback_aws::dynamo::{self, DynamoRatingStore};
use feedback_lambda::http::{json_response, problem_response, rating_request, refused, request_reference};
use feedback_lambda::observe::emit_metrics;
use feedback_lambda::problem::Problem;
use lambda_http::{Body, Request, Response};

pub struct App {
    store: DynamoRatingStore,
    settings: RatingSettings,
}

impl App {
    /// Cold-start initialisation: settings, one SDK client, a warmed connection.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let settings = RatingSettings::from_env(&Env::process())?;
        let client = dynamo::warm_client(&settings.table_name).await;
        Ok(Self::new(client, settings))
    }

    pub fn new(client: feedback_aws::dynamo::Client, settings: RatingSettings) -> Self {
        let store = DynamoRatingStore::new(client, &settings.table_name, settings.rating_retention_days);
        App { store, settings }
    }

    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let reference = request_reference(&req);
        let (submission, idempotency_key) = match rating_request(&req) {
            Ok(input) => input,
            Err(e) => {
                tracing::info!(rejected = %e, "rating request rejected");
                return Ok(problem_response(&Problem::from(e)));
            }
        };
        let outcome = submit_rating(&self.store, submission, idempotency_key, Timestamp::now()).await;
        Ok(match outcome {
            Ok(submitted) => {
                let rating = submitted.rating();
                let replayed = matches!(submitted, Submitted::Replayed(_));
                tracing::info!(
                    rating_id = %rating.id, conversation_id = %rating.submission.conversation_id,
                    customer_id = %rating.submission.customer_id, stars = rating.submission.stars, replayed, "rating accepted"
                );
                if !replayed {
                    emit_metrics(
                        &[("Function", "submit-rating")],
                        &[
                            ("RatingSubmitted", 1.0, "Count"),
                            ("RatingStars", f64::from(rating.submission.stars), "None"),
                        ],
                    );
                }
                let receipt = RatingReceipt::new(rating, self.settings.deeper_feedback_max_stars);
                let headers: &[(&'static str, &str)] = if replayed { &[("idempotent-replayed", "true")] } else { &[] };
                json_response(201, &receipt, headers)
            }
            Err(e) => refused(&Problem::from_submit_rating(&e, &reference), &e, "rating"),
        })
    }
}
