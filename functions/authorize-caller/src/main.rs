use feedback::auth::CallerKeys;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    feedback_lambda::http::init_tracing();
    // A malformed CALLER_KEYS fails the cold start loudly; an empty one refuses every caller.
    let keys = CallerKeys::parse(&std::env::var("CALLER_KEYS").unwrap_or_default())?;
    if keys.is_empty() {
        tracing::warn!("CALLER_KEYS is empty: every call will be refused");
    }
    let keys = &keys;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        Ok::<_, Error>(authorize_caller::decide(keys, &event.payload))
    }))
    .await
}
