use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    feedback_lambda::http::init_tracing();
    let app = order_bus::App::from_env().await?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        app.handle(event.payload).await.map_err(|e| feedback_lambda::http::store_diagnostic(&e))
    }))
    .await
}
