//! Plays API Gateway's HTTP API locally: matches the routes declared in template.yaml, runs the
//! route's Lambda authorizer with a real authorizer event, then invokes the route's function with a
//! real payload-format-2.0 event and turns its answer back into HTTP. Where API Gateway answers by
//! itself (no route, no credentials, refused, function failure) it answers with API Gateway's bodies.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};

use crate::local::lambda_host::{FunctionHost, InvokeError};

/// API Gateway's payload limit.
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

pub struct Authorizer {
    pub name: String,
    pub kind: AuthorizerKind,
}

pub enum AuthorizerKind {
    /// A Lambda authorizer, invoked with API Gateway's REQUEST event.
    Lambda { host: Arc<FunctionHost>, identity_headers: Vec<String>, simple_responses: bool },
    /// A JWT authorizer. There is no identity provider locally: the runner admits one documented
    /// dev token (`Bearer <token>`) and passes the claims API Gateway would
    /// (`requestContext.authorizer.jwt`). Anything else is 401, as API Gateway answers.
    DevJwt { token: String },
}

pub struct Route {
    pub method: String,
    pub path: String,
    pub host: Arc<FunctionHost>,
    pub authorizer: Option<Arc<Authorizer>>,
}

impl Route {
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        match_path(&self.path, path)
    }
}

/// Path parameters if `path` matches the route template `template` (`/conversations/{id}/close`).
fn match_path(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let mut want = template.trim_matches('/').split('/');
    let mut got = path.trim_matches('/').split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with("+}") => {
                let rest: Vec<&str> = std::iter::once(g).chain(got.by_ref()).collect();
                params.insert(w[1..w.len() - 2].to_owned(), percent_decode(&rest.join("/")));
                return Some(params);
            }
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                params.insert(w[1..w.len() - 1].to_owned(), percent_decode(g));
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// Extra routes the local runner serves itself (under `/_local/`), e.g. firing schedules.
pub type LocalHandler =
    Arc<dyn Fn(String, String, Bytes) -> Pin<Box<dyn Future<Output = (u16, Value)> + Send>> + Send + Sync>;

pub struct Gateway {
    pub routes: Vec<Route>,
    pub api_id: String,
    pub region: String,
    pub account: String,
    pub local: Option<LocalHandler>,
}

fn gateway_answer(status: u16, message: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(json!({ "message": message }).to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    r.headers_mut().insert("content-type", "application/json".parse().expect("static"));
    r
}

impl Gateway {
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_PAYLOAD).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(gateway_answer(413, "Request Entity Too Large")),
        };
        let path = parts.uri.path().to_owned();
        if let (Some(local), Some(rest)) = (&self.local, path.strip_prefix("/_local")) {
            let query = parts.uri.query().unwrap_or("").to_owned();
            let (status, value) = local(format!("{} {rest}", parts.method), query, body).await;
            let mut r = gateway_answer(status, "");
            *r.body_mut() = Full::new(Bytes::from(value.to_string()));
            return Ok(r);
        }
        let found = self.routes.iter().find_map(|r| {
            let method_ok = r.method == "ANY" || r.method == parts.method.as_str();
            r.matches(&path).filter(|_| method_ok).map(|params| (r, params))
        });
        let Some((route, path_params)) = found else { return Ok(gateway_answer(404, "Not Found")) };
        let request_id = ulid::Ulid::new().to_string();
        let mut event = self.event(&parts, &body, route, &path_params, &request_id);
        if let Some(authorizer) = &route.authorizer {
            match &authorizer.kind {
                AuthorizerKind::Lambda { host, identity_headers, simple_responses } => {
                    match self.authorize(&authorizer.name, host, identity_headers, *simple_responses, &event).await {
                        Ok(context) => {
                            event["requestContext"]["authorizer"] = json!({ "lambda": context });
                        }
                        Err(answer) => return Ok(answer),
                    }
                }
                AuthorizerKind::DevJwt { token } => {
                    let given = event["headers"]["authorization"].as_str().unwrap_or("");
                    let presented = given.strip_prefix("Bearer ").or_else(|| given.strip_prefix("bearer "));
                    if presented != Some(token.as_str()) {
                        return Ok(gateway_answer(401, "Unauthorized"));
                    }
                    event["requestContext"]["authorizer"] = json!({ "jwt": {
                        "claims": { "sub": "local-staff", "iss": "feedback-loop-local", "scope": "dashboard",
                                    "cognito:groups": "[feedback-staff]" },
                        "scopes": null,
                    }});
                }
            }
        }
        let result = route.host.invoke(Bytes::from(event.to_string())).await;
        Ok(match result {
            Ok(payload) => function_response(&payload),
            Err(InvokeError::Timeout(_)) => gateway_answer(503, "Service Unavailable"),
            Err(e) => {
                tracing::error!(route = %route.route_key(), error = %e, "integration failed");
                gateway_answer(500, "Internal Server Error")
            }
        })
    }

    /// Runs the authorizer: 401 without the identity headers, 403 when refused (API Gateway's bodies).
    async fn authorize(
        &self,
        name: &str,
        host: &FunctionHost,
        identity_headers: &[String],
        simple_responses: bool,
        request: &Value,
    ) -> Result<Value, Response<Full<Bytes>>> {
        let headers = request["headers"].as_object().cloned().unwrap_or_default();
        let mut identity = Vec::new();
        for h in identity_headers {
            match headers.get(&h.to_ascii_lowercase()).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                Some(v) => identity.push(json!(v)),
                None => return Err(gateway_answer(401, "Unauthorized")),
            }
        }
        let ctx = &request["requestContext"];
        let event = json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": format!("arn:aws:execute-api:{}:{}:{}/$default/{}{}", self.region, self.account, self.api_id,
                ctx["http"]["method"].as_str().unwrap_or(""), request["rawPath"].as_str().unwrap_or("")),
            "identitySource": identity,
            "routeKey": request["routeKey"],
            "rawPath": request["rawPath"],
            "rawQueryString": request["rawQueryString"],
            "cookies": request.get("cookies").cloned().unwrap_or(json!([])),
            "headers": request["headers"],
            "queryStringParameters": request.get("queryStringParameters").cloned().unwrap_or(json!({})),
            "requestContext": ctx,
            "pathParameters": request.get("pathParameters").cloned().unwrap_or(json!({})),
            "stageVariables": {},
        });
        let answer = host.invoke(Bytes::from(event.to_string())).await.map_err(|e| {
            tracing::error!(authorizer = %name, error = %e, "authorizer failed");
            gateway_answer(500, "Internal Server Error")
        })?;
        let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        let allowed = if simple_responses {
            answer["isAuthorized"].as_bool().unwrap_or(false)
        } else {
            answer["policyDocument"]["Statement"][0]["Effect"].as_str() == Some("Allow")
        };
        if allowed {
            Ok(answer.get("context").cloned().unwrap_or(json!({})))
        } else {
            Err(gateway_answer(403, "Forbidden"))
        }
    }

    /// The payload-format-2.0 event API Gateway sends a Lambda integration.
    fn event(
        &self,
        parts: &http::request::Parts,
        body: &Bytes,
        route: &Route,
        path_params: &BTreeMap<String, String>,
        request_id: &str,
    ) -> Value {
        let mut headers = Map::new();
        let mut cookies = Vec::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            if name == http::header::COOKIE {
                cookies.extend(value.split(';').map(|c| json!(c.trim())));
                continue;
            }
            match headers.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), json!(value));
                }
            }
        }
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        let mut query = Map::new();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")));
            match query.get_mut(&k) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                _ => {
                    query.insert(k, json!(v));
                }
            }
        }
        let content_type = headers.get("content-type").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        let textual = content_type.is_empty()
            || content_type.starts_with("text/")
            || content_type.contains("json")
            || content_type.contains("xml")
            || content_type.contains("x-www-form-urlencoded");
        let (body_value, is_base64) = match std::str::from_utf8(body) {
            _ if body.is_empty() => (Value::Null, false),
            Ok(text) if textual => (json!(text), false),
            _ => (json!(B64.encode(body)), true),
        };
        let now = jiff::Timestamp::now();
        let mut event = json!({
            "version": "2.0",
            "routeKey": route.route_key(),
            "rawPath": parts.uri.path(),
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": self.account,
                "apiId": self.api_id,
                "domainName": headers.get("host").cloned().unwrap_or(json!("localhost")),
                "domainPrefix": self.api_id,
                "http": {
                    "method": parts.method.as_str(),
                    "path": parts.uri.path(),
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("user-agent").cloned().unwrap_or(json!("")),
                },
                "requestId": request_id,
                "routeKey": route.route_key(),
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                "timeEpoch": now.as_millisecond(),
            },
            "isBase64Encoded": is_base64,
        });
        if !cookies.is_empty() {
            event["cookies"] = json!(cookies);
        }
        if !query.is_empty() {
            event["queryStringParameters"] = Value::Object(query);
        }
        if !path_params.is_empty() {
            event["pathParameters"] = json!(path_params);
        }
        if !body_value.is_null() {
            event["body"] = body_value;
        }
        event
    }
}

/// Turns a function's payload-2.0 response into HTTP. A payload without `statusCode` is, as in
/// API Gateway, a 200 whose body is the payload itself.
fn function_response(payload: &[u8]) -> Response<Full<Bytes>> {
    let value: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) => return gateway_answer(500, "Internal Server Error"),
    };
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        let mut r = Response::new(Full::new(Bytes::copy_from_slice(payload)));
        r.headers_mut().insert("content-type", "application/json".parse().expect("static"));
        return r;
    };
    let body = match value.get("body").and_then(Value::as_str) {
        None => Bytes::new(),
        Some(b) if value.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) => {
            Bytes::from(B64.decode(b).unwrap_or_default())
        }
        Some(b) => Bytes::from(b.to_owned()),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = hyper::StatusCode::from_u16(status as u16).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    let h = r.headers_mut();
    for (k, v) in value.get("headers").and_then(Value::as_object).into_iter().flatten() {
        if let (Ok(name), Some(Ok(val))) =
            (http::HeaderName::from_bytes(k.as_bytes()), v.as_str().map(http::HeaderValue::from_str))
        {
            h.append(name, val);
        }
    }
    for (k, vs) in value.get("multiValueHeaders").and_then(Value::as_object).into_iter().flatten() {
        for v in vs.as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let (Ok(name), Ok(val)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(v))
                && !h.get_all(&name).iter().any(|existing| existing == val)
            {
                h.append(name, val);
            }
        }
    }
    for c in value.get("cookies").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if let Ok(val) = http::HeaderValue::from_str(c) {
            h.append(http::header::SET_COOKIE, val);
        }
    }
    r
}

pub fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_utf8_and_stray_percent() {
        assert_eq!(percent_decode("%E4%BC%9A%E8%AF%9D-1"), "会话-1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%E4%B"), "\u{FFFD}%B");
        assert_eq!(percent_decode("会%"), "会%");
    }

    #[test]
    fn routes_match_templates_with_path_parameters() {
        let m = |tpl: &str, path: &str| -> Option<BTreeMap<String, String>> { match_path(tpl, path) };
        assert_eq!(m("/ratings", "/ratings"), Some(BTreeMap::new()));
        assert_eq!(m("/ratings", "/ratings/x"), None);
        let p = m("/conversations/{id}/close", "/conversations/c%2D1/close").unwrap();
        assert_eq!(p["id"], "c-1");
        assert_eq!(m("/conversations/{id}/close", "/conversations//close"), None);
        assert_eq!(m("/r/{proxy+}", "/r/a/b").unwrap()["proxy"], "a/b");
    }
}
