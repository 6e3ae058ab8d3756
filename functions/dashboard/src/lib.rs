//! The staff dashboard. `GET /dashboard` is the page (no data, no credentials needed); the data
//! routes sit behind the API's staff JWT authorizer and, in depth, answer 401 here too when a
//! request reaches them without the authorizer's claims.
//!
//! - `GET /dashboard/view?week=` — the week's picture as HTML (server-rendered SVG charts)
//! - `GET /reports/{week}` — the stored Monday report (JSON)
//! - `GET /stats?from=&to=` — weekly headlines of a date range (JSON)
//! - `GET /feedback.csv?from=&to=` — ratings and trigger events with their analysis (CSV)

use std::convert::Infallible;

use feedback::Timestamp;
use feedback::config::{ConfigError, Env, WeekSettings};
use feedback::i18n::Locale;
use feedback::reporting::ReportStore;
use feedback::reporting::stats::{EXPORT_MAX_DAYS, EXPORT_MAX_ROWS, STATS_DEFAULT_DAYS, STATS_MAX_DAYS, stats_between};
use feedback_aws::dynamo::{self, DynamoReportStore};
use feedback_lambda::dashboard as board;
use feedback_lambda::http::{json_response, path_parameter, refused, request_reference};
use feedback_lambda::problem::Problem;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

pub struct App {
    store: DynamoReportStore,
    corrections: feedback_aws::dynamo::DynamoCorrectionStore,
    surveys: feedback_aws::dynamo::DynamoSurveyStore,
    weeks: WeekSettings,
    /// The group (or scope) a staff token must carry; `None`: any token of the issuer will do.
    staff_group: Option<String>,
    /// The page and its Content-Security-Policy in each language, made once per cold start.
    pages: Vec<(Locale, (String, String))>,
    shop_name: String,
    /// The shop's language (`STAFF_LOCALE`): what staff read when neither the address nor their
    /// browser names one of ours.
    locale: Locale,
}

fn pages(shop_name: &str, sign_in: Option<&board::StaffSignIn>) -> Vec<(Locale, (String, String))> {
    Locale::ALL.iter().map(|l| (*l, board::shell_page(shop_name, sign_in, *l))).collect()
}

/// Why a request got no data.
enum Refusal {
    Problem(Problem),
    Store(feedback::errors::StoreError),
    Chart(feedback_lambda::charts::ChartError),
}

impl From<board::ViewError> for Refusal {
    fn from(e: board::ViewError) -> Self {
        match e {
            board::ViewError::Store(e) => Refusal::Store(e),
            board::ViewError::Chart(e) => Refusal::Chart(e),
        }
    }
}

impl From<Problem> for Refusal {
    fn from(p: Problem) -> Self {
        Refusal::Problem(p)
    }
}
impl From<feedback::errors::StoreError> for Refusal {
    fn from(e: feedback::errors::StoreError) -> Self {
        Refusal::Store(e)
    }
}

/// The staff member the JWT authorizer admitted (`sub`) and the token's claims, if it did.
fn staff_member(req: &Request) -> Option<(String, std::collections::HashMap<String, String>)> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => {
            let jwt = ctx.authorizer.as_ref()?.jwt.as_ref()?;
            let sub = jwt.claims.get("sub").cloned().unwrap_or_else(|| "staff".to_owned());
            Some((sub, jwt.claims.clone()))
        }
        _ => None,
    }
}

fn with_headers(mut res: Response<Body>, headers: &[(header::HeaderName, &str)]) -> Response<Body> {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            res.headers_mut().insert(name.clone(), v);
        }
    }
    res
}

fn text(status: u16, content_type: &str, body: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    with_headers(
        res,
        &[
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
    )
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let table = env.required("TABLE_NAME")?;
        let weeks = WeekSettings::from_env(&env)?;
        let shop_name = env.or("SHOP_NAME", "Our shop".to_owned())?;
        let staff_group = env.or("STAFF_GROUP", String::new())?;
        let sign_in_url = env.or("STAFF_SIGN_IN_URL", String::new())?;
        let sign_in = board::StaffSignIn::new(&sign_in_url, &env.or("STAFF_CLIENT_ID", String::new())?)
            .map_err(|why| ConfigError::Invalid { name: "STAFF_SIGN_IN_URL", value: sign_in_url, why })?;
        let locale = env.or("STAFF_LOCALE", Locale::ZhCn)?;
        let client = dynamo::warm_client(&table).await;
        Ok(Self::new(client, &table, weeks, shop_name)
            .with_staff_group(&staff_group)
            .with_sign_in(sign_in)
            .with_locale(locale))
    }

    pub fn new(client: feedback_aws::dynamo::Client, table: &str, weeks: WeekSettings, shop_name: String) -> Self {
        App {
            corrections: feedback_aws::dynamo::DynamoCorrectionStore::new(client.clone(), table),
            surveys: feedback_aws::dynamo::DynamoSurveyStore::new(client.clone(), table),
            store: DynamoReportStore::new(client, table, weeks.clone()),
            weeks,
            staff_group: None,
            pages: pages(&shop_name, None),
            shop_name,
            locale: Locale::ZhCn,
        }
    }

    /// Staff sign in on the page itself (OpenID Connect, code with PKCE) with this service.
    pub fn with_sign_in(mut self, sign_in: Option<board::StaffSignIn>) -> Self {
        self.pages = pages(&self.shop_name, sign_in.as_ref());
        self
    }

    /// The shop's language, for staff whose browser names none of ours.
    pub fn with_locale(mut self, locale: Locale) -> Self {
        self.locale = locale;
        self
    }

    /// Admits only tokens that carry `group` (in `cognito:groups` or `groups`) or the scope `group`
    /// (in `scope`); empty: any token the staff issuer signed for the audience.
    pub fn with_staff_group(mut self, group: &str) -> Self {
        self.staff_group = Some(group.trim().to_owned()).filter(|g| !g.is_empty());
        self
    }

    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path().trim_end_matches('/').to_owned();
        let query = req.query_string_parameters_ref().cloned().unwrap_or_default();
        let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        let locale = board::request_locale(query.first("lang"), accept, self.locale);
        let cat = locale.catalogue();
        if path.ends_with("/dashboard") && path_parameter(&req, "week").is_none() {
            let (page, csp) = self.pages.iter().find(|(l, _)| *l == locale).map(|(_, p)| p).unwrap_or(&self.pages[0].1);
            let res = text(200, "text/html; charset=utf-8", page.clone());
            return Ok(with_headers(
                res,
                &[
                    (header::CONTENT_SECURITY_POLICY, csp),
                    (header::X_FRAME_OPTIONS, "DENY"),
                    (header::REFERRER_POLICY, "no-referrer"),
                    (header::VARY, "Accept-Language"),
                    (header::CONTENT_LANGUAGE, locale.tag()),
                ],
            ));
        }
        let Some((staff, claims)) = staff_member(&req) else {
            let p = Problem::new(401, "unauthenticated", "Staff sign-in required", "This route needs a staff token");
            return Ok(refused(&p, &"no authorizer claims", "dashboard"));
        };
        if let Some(group) = &self.staff_group
            && !feedback_lambda::http::token_carries(&claims, group)
        {
            let p = Problem::new(
                403,
                "not-staff",
                "Not a staff member",
                format!("This token is not in the staff group {group:?}; ask an administrator to add you"),
            );
            return Ok(refused(&p, &format!("{staff} lacks group {group}"), "dashboard"));
        }
        let now = Timestamp::now();
        let today = self.weeks.shop_time_zone.to_datetime(now).date();
        let answer: Result<Response<Body>, Refusal> = async {
            // The routes with a path parameter first: its value may itself end like another route
            // (`/reports/stats`).
            if let Some(raw) = path_parameter(&req, "ref") {
                use feedback::insights::corrections::{Correction, FeedbackRef, correct_feedback};
                let Some(item) = FeedbackRef::parse(&raw) else {
                    let mut p = Problem::new(
                        400,
                        "invalid-ref",
                        "Invalid feedback reference",
                        format!("{raw:?} is not rating~<conversation> or message~<conversation>~<message>"),
                    );
                    p.invalid_params = vec![feedback::validate::FieldError::new("ref", "format", "rating~<conversation> or message~<conversation>~<message>")];
                    return Err(p.into());
                };
                let correction = feedback_lambda::http::json_body(&req, feedback::insights::corrections::CORRECTION_BODY_MAX_BYTES)
                    .and_then(Correction::from_json)
                    .map_err(Problem::from)?;
                return match correct_feedback(&self.corrections, &item, &correction, &staff, now).await? {
                    Some(done) => {
                        tracing::info!(%staff, reference = %done.reference, version = done.version, "feedback corrected");
                        Ok(json_response(200, &done, &[("cache-control", "no-store")]))
                    }
                    None => Err(Problem::new(
                        404,
                        "not-correctable",
                        "Nothing to correct",
                        format!("{} is not a counted feedback item (unknown, a repeat, or analysed before corrections)", item.as_string()),
                    )
                    .into()),
                };
            }
            if let Some(id) = path_parameter(&req, "survey") {
                use feedback::followups::survey::{Surveys, invitation_body, invite};
                let Some(survey) = Surveys::builtin().get(&id) else {
                    return Err(Problem::new(
                        404,
                        "unknown-survey",
                        "No such survey",
                        format!("{id:?} is not a survey of rules/surveys.toml"),
                    )
                    .into());
                };
                let customers = feedback_lambda::http::json_body(&req, 16 * 1024)
                    .and_then(invitation_body)
                    .map_err(Problem::from)?;
                let results = invite(&self.surveys, survey, &customers, now).await?;
                tracing::info!(%staff, survey = %survey.id, customers = customers.len(), "panel invited");
                let results: Vec<serde_json::Value> = results
                    .iter()
                    .map(|(customer_id, outcome)| serde_json::json!({ "customer_id": customer_id, "outcome": outcome }))
                    .collect();
                return Ok(json_response(
                    200,
                    &serde_json::json!({ "survey": survey.id, "results": results }),
                    &[("cache-control", "no-store")],
                ));
            }
            if let Some(week) = path_parameter(&req, "week") {
                let Some(week) = feedback::time::IsoWeek::parse(&week).map(|w| w.to_string()) else {
                    let mut p = Problem::new(
                        400,
                        "invalid-week",
                        "Invalid week",
                        format!("{week:?} is not an ISO week like 2026-W47"),
                    );
                    p.invalid_params = vec![feedback::validate::FieldError::new("week", "iso-week", "like 2026-W47")];
                    return Err(p.into());
                };
                match self.store.report(&week).await? {
                    Some(report) => Ok(json_response(
                        200,
                        &report.to_json(cat),
                        &[("cache-control", "no-store"), ("vary", "Accept-Language"), ("content-language", locale.tag())],
                    )),
                    None => Err(Problem::new(
                        404,
                        "no-report",
                        "No report for this week",
                        format!(
                            "No weekly report was made for {week}; reports are made on the Monday after a week ends"
                        ),
                    )
                    .into()),
                }
            } else if path.ends_with("/dashboard/view") {
                let week = board::view_week(query.first("week"), today)?;
                // The panel's section is extra: the week shows without it if its read fails.
                let surveys = feedback::followups::survey::survey_reports(
                    &self.surveys,
                    feedback::followups::survey::Surveys::builtin(),
                )
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "research panel not read; the week view goes without it");
                    Vec::new()
                });
                let view = board::week_view(&self.store, &week, today, now, &surveys, cat).await?;
                Ok(with_headers(
                    text(200, "text/html; charset=utf-8", view),
                    &[(header::VARY, "Accept-Language"), (header::CONTENT_LANGUAGE, locale.tag())],
                ))
            } else if path.ends_with("/scorecards") {
                let week = board::view_week(query.first("week"), today)?;
                let by_raw = query.first("by").unwrap_or("intent");
                let by = feedback::insights::scorecards::ScoreBy::parse(by_raw).ok_or_else(|| {
                    let mut p = Problem::new(
                        400,
                        "invalid-query",
                        "Invalid scorecard dimension",
                        format!("by={by_raw:?}: one of intent, agent, channel, arm"),
                    );
                    p.invalid_params =
                        vec![feedback::validate::FieldError::new("by", "one_of", "intent, agent, channel or arm")];
                    Refusal::from(p)
                })?;
                let week =
                    feedback::time::IsoWeek::parse(&week).unwrap_or_else(|| feedback::time::IsoWeek::of_date(today));
                let card = feedback::reporting::service::week_scorecard(&self.store, week, by).await?;
                Ok(json_response(200, &card, &[("cache-control", "no-store")]))
            } else if path.ends_with("/surveys") {
                let reports = feedback::followups::survey::survey_reports(
                    &self.surveys,
                    feedback::followups::survey::Surveys::builtin(),
                )
                .await?;
                Ok(json_response(200, &serde_json::json!({ "surveys": reports }), &[("cache-control", "no-store")]))
            } else if path.ends_with("/experiments") {
                let week = feedback::time::IsoWeek::of_date(today);
                let reports = feedback::reporting::service::experiment_reports(
                    &self.store,
                    feedback::experiments::Experiments::builtin(),
                    week,
                )
                .await?;
                let reports: Vec<serde_json::Value> = reports.iter().map(|x| x.to_json(cat)).collect();
                Ok(json_response(
                    200,
                    &serde_json::json!({ "experiments": reports }),
                    &[("cache-control", "no-store"), ("vary", "Accept-Language"), ("content-language", locale.tag())],
                ))
            } else if path.ends_with("/stats") {
                let (from, to) = board::date_range(
                    query.first("from"),
                    query.first("to"),
                    today,
                    STATS_DEFAULT_DAYS,
                    STATS_MAX_DAYS,
                )?;
                let stats = stats_between(&self.store, from, to).await?;
                Ok(json_response(200, &stats, &[("cache-control", "no-store")]))
            } else if path.ends_with("/feedback.csv") {
                let (from, to) = board::date_range(query.first("from"), query.first("to"), today, 7, EXPORT_MAX_DAYS)?;
                let (rows, truncated) = self.store.feedback_rows(from, to, EXPORT_MAX_ROWS).await?;
                tracing::info!(%staff, %from, %to, rows = rows.len(), truncated, "feedback exported");
                let res = text(200, "text/csv; charset=utf-8", board::feedback_csv(&rows, truncated, cat));
                let disposition = format!("attachment; filename=\"feedback-{from}-{to}.csv\"");
                Ok(with_headers(res, &[(header::CONTENT_DISPOSITION, &disposition)]))
            } else {
                Err(Problem::new(404, "not-found", "Not found", format!("No dashboard route {path}")).into())
            }
        }
        .await;
        Ok(match answer {
            Ok(res) => res,
            Err(Refusal::Problem(p)) => refused(&p, &p.detail, "dashboard"),
            Err(Refusal::Store(e)) => refused(&Problem::from_store(&e, &request_reference(&req)), &e, "dashboard"),
            Err(Refusal::Chart(e)) => refused(&Problem::internal(&request_reference(&req)), &e, "dashboard"),
        })
    }
}
