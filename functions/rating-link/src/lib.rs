//! The follow-up's public pages: `/r/{token}` (rate) and `/u/{token}` (unsubscribe). GET shows a
//! page and never writes; POST (the page's form, or a mail client's one-click unsubscribe) acts.

use std::convert::Infallible;

use feedback::Timestamp;
use feedback::config::{ConfigError, Env, RatingSettings};
use feedback::followups::link::{LinkForm, LinkPage, LinkSigner, open_link};
use feedback_aws::dynamo::{self, DynamoFollowUpStore, DynamoRatingStore};
use feedback_lambda::http::{path_parameter, request_reference};
use feedback_lambda::pages::render;
use feedback_lambda::problem::Problem;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestPayloadExt, Response};

pub struct App {
    signer: LinkSigner,
    links: DynamoFollowUpStore,
    ratings: DynamoRatingStore,
    surveys: feedback_aws::dynamo::DynamoSurveyStore,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let settings = RatingSettings::from_env(&env)?;
        let key = env.required("LINK_SIGNING_KEY")?;
        let client = dynamo::warm_client(&settings.table_name).await;
        Self::new(client, &settings, key.as_bytes()).ok_or(ConfigError::Invalid {
            name: "LINK_SIGNING_KEY",
            value: "(hidden)".into(),
            why: "one key of at least 32 bytes, or id:key entries with the signing one first (docs/operations.md)"
                .into(),
        })
    }

    pub fn new(client: feedback_aws::dynamo::Client, settings: &RatingSettings, key: &[u8]) -> Option<Self> {
        Some(App {
            signer: LinkSigner::new(key)?,
            links: DynamoFollowUpStore::new(client.clone(), &settings.table_name),
            surveys: feedback_aws::dynamo::DynamoSurveyStore::new(client.clone(), &settings.table_name),
            ratings: DynamoRatingStore::new(client, &settings.table_name, settings.rating_retention_days),
        })
    }

    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let token = path_parameter(&req, "token").unwrap_or_default();
        if req.uri().path().contains("/s/") {
            return Ok(self.survey(&req, &token).await);
        }
        let unsubscribe = req.uri().path().contains("/u/");
        // A form that does not decode is an empty one (the page then asks for the stars again).
        let form = (req.method() == Method::POST)
            .then(|| req.form_url_encoded::<LinkForm>().ok().flatten().unwrap_or_default());
        let action = format!("{}/{token}", if unsubscribe { "../u" } else { "../r" });
        let outcome =
            open_link(&self.signer, &self.links, &self.ratings, unsubscribe, &token, form.as_ref(), Timestamp::now())
                .await;
        let (page, language) = match outcome {
            Ok(answer) => answer,
            Err(e) => return Ok(trouble(&req, &e)),
        };
        if page != LinkPage::RatingForm && page != LinkPage::UnsubscribeForm {
            tracing::info!(page = ?page, post = form.is_some(), "link page");
        }
        let (status, body) = render(&page, language, &action);
        Ok(html(status, body))
    }
}

impl App {
    /// `GET`/`POST /s/{token}`: a panel survey's page.
    async fn survey(&self, req: &Request, token: &str) -> Response<Body> {
        use feedback::followups::survey::{SurveyPage, Surveys, open_survey};
        // A form that does not decode is an empty one (the page then asks again).
        let form = (req.method() == Method::POST).then(|| {
            req.form_url_encoded::<std::collections::BTreeMap<String, String>>().ok().flatten().unwrap_or_default()
        });
        let outcome = open_survey(
            &self.signer,
            &self.links,
            &self.surveys,
            Surveys::builtin(),
            token,
            form.as_ref(),
            Timestamp::now(),
        )
        .await;
        match outcome {
            Ok((page, language)) => {
                if !matches!(page, SurveyPage::Form { .. }) || form.is_some() {
                    tracing::info!(page = ?std::mem::discriminant(&page), post = form.is_some(), "survey page");
                }
                let (status, body) = feedback_lambda::pages::render_survey(&page, language, &format!("../s/{token}"));
                html(status, body)
            }
            Err(e) => trouble(req, &e),
        }
    }
}

/// Storage failed: the page in both languages, with the status (and `Retry-After`) it maps to.
fn trouble(req: &Request, e: &feedback::errors::StoreError) -> Response<Body> {
    let problem = Problem::from_store(e, &request_reference(req));
    tracing::error!(error = %e, "link page failed");
    let mut res = html(problem.status, feedback_lambda::pages::trouble());
    if let Some(seconds) = problem.retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    res
}

/// Pages carry the token in their URL: not cached, not indexed, not sent on as a referrer.
fn html(status: u16, body: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}
