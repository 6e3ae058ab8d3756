//! The HTTP API's Lambda authorizer (payload 2.0, simple responses): admits a request whose
//! `Authorization: Bearer <key>` matches one of the configured caller key digests.

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use feedback::auth::CallerKeys;
use serde_json::json;

pub fn decide(
    keys: &CallerKeys,
    request: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    let authorization = request.headers.get("authorization").and_then(|v| v.to_str().ok());
    match keys.authenticate(authorization) {
        Ok(caller) => {
            tracing::info!(caller, route = request.route_key.as_deref().unwrap_or(""), "caller admitted");
            response(true, json!({ "caller": caller }))
        }
        Err(e) => {
            tracing::info!(reason = %e, route = request.route_key.as_deref().unwrap_or(""), "caller refused");
            response(false, json!({}))
        }
    }
}

fn response(is_authorized: bool, context: serde_json::Value) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    let mut r = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    r.is_authorized = is_authorized;
    r.context = context;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedback::auth::key_digest;

    /// The real event shape API Gateway sends a REQUEST authorizer (from aws_lambda_events' fixtures).
    fn event(authorization: Option<&str>) -> ApiGatewayV2CustomAuthorizerV2Request {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/authorizer-v2-request.json")).unwrap();
        if let Some(a) = authorization {
            v["headers"]["authorization"] = json!(a);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_chat_platform_key_is_admitted_and_named() {
        let keys = CallerKeys::parse(&format!("chat-platform:{}", key_digest("s3cret"))).unwrap();
        let yes = decide(&keys, &event(Some("Bearer s3cret")));
        assert!(yes.is_authorized);
        assert_eq!(yes.context["caller"], "chat-platform");
        assert!(!decide(&keys, &event(Some("Bearer guess"))).is_authorized);
        assert!(!decide(&keys, &event(None)).is_authorized);
    }

    #[test]
    fn with_no_keys_configured_everyone_is_refused() {
        assert!(!decide(&CallerKeys::default(), &event(Some("Bearer anything"))).is_authorized);
    }
}
