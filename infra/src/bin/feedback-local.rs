//! `make run`: the whole system locally. See README "Run it locally".

use infra::local::runner::{RunnerConfig, start};
use infra::{BoxError, DEV_CALLER_KEY, STAFF_DEV_TOKEN};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RUNNER_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cfg = RunnerConfig::from_env();
    let mut stack = start(cfg).await?;
    let base = format!("http://{}", stack.address);
    if std::env::var("ANNOUNCE").is_ok_and(|v| v == "json") {
        // For a program that started us with PORT=0 MOTO_PORT=0: where everything listens, as the
        // first line (the ports are the ones actually bound, so parallel stacks never collide).
        println!("{}", serde_json::json!({ "api": base, "moto": stack.moto.endpoint }));
    }
    println!("Feedback Loop is running locally.");
    println!("  API          {base}   (routes: {})", stack.routes.join(", "));
    println!(
        "  moto         {}   (sent mail and SMS: {}/moto-api/data.json)",
        stack.moto.endpoint, stack.moto.endpoint
    );
    println!("  caller key   Authorization: Bearer {DEV_CALLER_KEY}   (local only)");
    println!();
    println!("Try:");
    println!(
        "  curl -i -X POST {base}/ratings -H 'Authorization: Bearer {DEV_CALLER_KEY}' -H 'Content-Type: application/json' \\\n    \
         -d '{{\"conversation_id\":\"c-1001\",\"customer_id\":\"u-42\",\"stars\":2,\"comment\":\"物流太慢了\",\"channel\":\"web\"}}'"
    );
    println!("  then: analysis on the item (within a second), staff alerts at {base}/_local/notifications,");
    println!(
        "  and the follow-up schedule as of any time: curl -X POST '{base}/_local/schedules/FollowUpSchedule?time=2026-12-01T02:00:00Z'"
    );
    println!("  Everything local: {base}/_local/");
    println!();
    println!("Staff dashboard: {base}/dashboard#token={STAFF_DEV_TOKEN}");
    println!("  a demo of five weeks (~340 conversations, ~50 s): curl -X POST {base}/_local/demo   (or: make demo)");
    println!(
        "  the Monday report and digest as of any time: curl -X POST '{base}/_local/schedules/WeeklySchedule?time=2026-11-30T01:00:00Z'"
    );
    println!("\nCtrl-C stops everything (moto included).");
    if std::env::var("DEMO").is_ok_and(|v| !v.is_empty() && v != "0") {
        let url = format!("{base}/_local/demo");
        tokio::spawn(async move {
            println!("\nSeeding the demo...");
            match infra::http::send("POST", &url, &[], "").await {
                Ok(r) if r.status == 200 => {
                    println!("Demo ready: {}", r.json());
                    println!("Open {base}/dashboard#token={STAFF_DEV_TOKEN}");
                }
                Ok(r) => eprintln!("demo failed: {} {}", r.status, String::from_utf8_lossy(&r.body)),
                Err(e) => eprintln!("demo failed: {e}"),
            }
        });
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping");
    stack.moto.stop().await;
    Ok(())
}
