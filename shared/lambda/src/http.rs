//! Glue between API Gateway (HTTP API, payload v2, through lambda_http) and the domain: reading
//! JSON bodies and headers into domain input, and writing results and `Problem`s as responses.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::problem::Problem;
use feedback::validate::InputError;

/// JSON logs (when Lambda's `LoggingConfig.LogFormat` is JSON) with the runtime's per-invocation
/// span carrying the request id; level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The Lambda request id, quoted in 5xx answers so a caller's report can be found in the logs.
pub fn request_reference(req: &Request) -> String {
    req.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_else(|| "local".to_owned())
}

/// The body of a JSON request, after checking its declared type and size. A missing Content-Type
/// is tolerated (some HTTP clients omit it); a different one is 415.
pub fn json_body(req: &Request, max_bytes: usize) -> Result<&[u8], InputError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(InputError::UnsupportedMediaType(ct.to_owned()));
        }
    }
    let body: &[u8] = req.body().as_ref();
    if body.len() > max_bytes {
        return Err(InputError::TooLarge { limit: max_bytes });
    }
    Ok(body)
}

/// A path parameter of the route (`{id}` in `/conversations/{id}/messages`).
pub fn path_parameter(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref().and_then(|p| p.first(name)).map(str::to_owned)
}

pub fn header<'r>(req: &'r Request, name: &str) -> Option<&'r [u8]> {
    req.headers().get(name).map(HeaderValue::as_bytes)
}

pub fn json_response<T: Serialize>(status: u16, value: &T, extra_headers: &[(&'static str, &str)]) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut res = Response::new(Body::Text(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra_headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            res.headers_mut().insert(*name, v);
        }
    }
    res
}

pub fn problem_response(problem: &Problem) -> Response<Body> {
    let retry_after = problem.retry_after.map(|s| s.to_string());
    let extra: Vec<(&'static str, &str)> = retry_after.iter().map(|s| ("retry-after", s.as_str())).collect();
    let mut res = json_response(problem.status, problem, &extra);
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    res
}

/// Answers a request the domain refused or could not complete, logging it the way it deserves:
/// a 5xx at error level with the cause (for whoever is on call), a 4xx at info (the caller's to fix).
pub fn refused(problem: &Problem, cause: &dyn std::fmt::Display, what: &str) -> Response<Body> {
    if problem.is_server_error() {
        tracing::error!(error = %cause, status = problem.status, "{what} failed");
    } else {
        tracing::info!(rejected = %cause, status = problem.status, "{what} refused");
    }
    problem_response(problem)
}

/// A `POST /ratings` request read into domain input: the submission and its `Idempotency-Key`.
pub fn rating_request(req: &Request) -> Result<(feedback::ratings::RatingSubmission, Option<String>), InputError> {
    use feedback::ratings::{BODY_MAX_BYTES, RatingSubmission, check_idempotency_key};
    let key = header(req, "idempotency-key").map(check_idempotency_key).transpose()?;
    let submission = RatingSubmission::from_json(json_body(req, BODY_MAX_BYTES)?)?;
    Ok((submission, key))
}

/// Storage failures of event-driven functions (schedules, streams) become Lambda errors, which the
/// caller retries: the error type says whether retrying can help.
pub fn store_diagnostic(e: &feedback::errors::StoreError) -> lambda_runtime::Diagnostic {
    let error_type = if e.is_retryable() { "StoreUnavailable" } else { "StoreFailed" };
    lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
}

/// A weekly run that could not finish fails the invocation, so EventBridge Scheduler retries it;
/// what was sent stays sent (the digest state is on the report item).
pub fn digest_diagnostic(e: feedback::reporting::DigestError) -> lambda_runtime::Diagnostic {
    use feedback::reporting::DigestError;
    let error_type = match &e {
        DigestError::Store(s) => return store_diagnostic(s),
        DigestError::Notify(feedback::errors::NotifyError::Unavailable(_)) => "NotifyUnavailable",
        DigestError::Notify(feedback::errors::NotifyError::Failed(_)) => "NotifyFailed",
        DigestError::Chart(_) => "ChartFailed",
        DigestError::InProgress(_) => "DigestInProgress",
    };
    lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
}

/// Whether a JWT's claims (as API Gateway's authorizer passes them) name `group` in
/// `cognito:groups`, `groups` or `scope`: a list claim arrives as text (`[a b]`), a scope
/// claim is space-separated.
pub fn token_carries(claims: &std::collections::HashMap<String, String>, group: &str) -> bool {
    ["cognito:groups", "groups", "scope"]
        .iter()
        .filter_map(|k| claims.get(*k))
        .any(|v| v.split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | ',' | '"')).any(|g| g == group))
}
