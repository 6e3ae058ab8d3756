use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    feedback_lambda::http::init_tracing();
    let app = customers::App::from_env().await?;
    let app = &app;
    lambda_http::run(service_fn(move |req| app.handle(req))).await
}
