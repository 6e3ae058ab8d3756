//! The running API held to its contract: schemathesis generates requests from `openapi.yaml` for
//! every operation (examples, boundary coverage, fuzzing, stateful links) against the local runner
//! (`make run`'s system) and checks every answer: no 5xx, status codes, content types, headers
//! and bodies as the spec says, invalid data refused, auth not ignored.
//!
//! Two checks are left out, for reasons of the API, not of convenience:
//! - `positive_data_acceptance`: schema-valid requests the API rightly refuses for rules a JSON
//!   Schema cannot state (a date range over 31 days or ending before it starts, an Idempotency-Key
//!   reused for another rating, a time zone that does not exist, a `sent_at` years away).
//! - `unsupported_method`: it expects 405 for a method a path does not declare; API Gateway HTTP
//!   APIs answer 404 (no route) and the local runner does the same.
//!
//! Before it runs, a real follow-up is sent and a weekly report made (through the API and the
//! runner's schedules), so the link pages and `/reports/{week}` are tested with a valid token and
//! a week that exists, not only with the 404s of made-up ones.
//!
//! `SCHEMATHESIS_EXAMPLES` (default 50 per operation and phase) and `SCHEMATHESIS_SEED` (default
//! fixed, so a run is repeatable; `random` for a new one) tune it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use testkit::{RunningSystem, send};

const KEY: &str = "Bearer dev-local-key";

async fn call(sys: &RunningSystem, method: &str, path: &str, body: Value) -> Value {
    let headers = [("authorization", KEY), ("content-type", "application/json")];
    let reply = send(method, &format!("{}{path}", sys.base_url), &headers, body.to_string()).await.unwrap();
    assert!(reply.status < 300, "{method} {path}: {} {:?}", reply.status, reply.json());
    reply.json()
}

/// A follow-up e-mail sent for real (its rating and unsubscribe tokens), last week's report and a
/// suggested offer.
async fn seed(sys: &RunningSystem) -> Seeded {
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let day = |offset: i64| today.checked_add(jiff::Span::new().days(offset)).unwrap();
    call(
        sys,
        "PUT",
        "/customers/u-api/contact",
        json!({"email": "u-api@example.com", "consent": {"email": true, "sms": false}, "time_zone": "Asia/Shanghai", "locale": "zh-CN"}),
    )
    .await;
    call(
        sys,
        "POST",
        "/conversations/c-api/close",
        json!({"resolved": false, "closed_at": format!("{}T01:00:00Z", day(-3)), "customer_id": "u-api"}),
    )
    .await;
    let fire = |schedule: &str, time: String| {
        let url = format!("{}/_local/schedules/{schedule}?time={time}", sys.base_url);
        async move { send("POST", &url, &[], "").await.unwrap() }
    };
    let run = fire("FollowUpSchedule", format!("{}T02:00:00Z", day(-2))).await;
    assert_eq!(run.json()["sent"], 1, "{:?}", run.json());
    let weekly = fire("WeeklySchedule", format!("{}T01:00:00Z", day(0))).await;
    assert_eq!(weekly.status, 200, "{:?}", weekly.json());
    let data = infra::local::moto::data(&sys.moto_url).await.unwrap();
    let mail = data["ses"]["RawMessage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| fakes::mail::read(m["raw_data"].as_str().unwrap_or_default()))
        .find(|m| m.to.iter().any(|t| t == "u-api@example.com"))
        .expect("the follow-up e-mail");
    let token = |text: &str, path: &str| {
        text.split(path).nth(1).unwrap().split(['>', '\r', '\n', ' ']).next().unwrap().to_owned()
    };
    let week = feedback::time::IsoWeek::of_date(day(0)).before(1).to_string();
    // A suggested offer: a complaint about a late order, in a conversation outside the held-out share.
    let now = jiff::Timestamp::now();
    let shipped = json!({"events": [{"event_id": "e-api-1", "type": "shipped", "order_id": "o-api", "customer_id": "u-api",
        "at": (now - jiff::SignedDuration::from_hours(72)).to_string(),
        "promised_delivery_at": (now - jiff::SignedDuration::from_hours(24)).to_string()}]});
    call(sys, "POST", "/orders/events", shipped).await;
    let offer =
        (0..).map(|n| format!("c-api-offer-{n}")).find(|c| !feedback::customers::offers::held_out(c, 10)).unwrap();
    let complaint = json!({"messages": [{"message_id": "m-1", "role": "customer", "text": "快递到现在还没到，太慢了，一直没解决",
        "sent_at": now.to_string(), "customer_id": "u-api", "channel": "app"}]});
    let answer = call(sys, "POST", &format!("/conversations/{offer}/messages"), complaint).await;
    assert_eq!(answer["strategy"]["offer"]["state"], "suggested", "{answer}");
    // Its customer message is analysed through the stream within a moment: correctable.
    let correction = format!("message~{offer}~m-1");
    Seeded {
        rate: token(&mail.text, "/r/"),
        unsubscribe: token(mail.list_unsubscribe.as_deref().unwrap(), "/u/"),
        week,
        offer,
        correction,
    }
}

/// What the test seeds for schemathesis to start from.
struct Seeded {
    rate: String,
    unsubscribe: String,
    week: String,
    offer: String,
    correction: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn schemathesis() -> PathBuf {
    let venv = std::env::var("FEEDBACK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/feedback-loop/venv"));
    let path = venv.join("bin/schemathesis");
    assert!(path.exists(), "{} missing: `make venv` installs it (infra/requirements.txt)", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_api_keeps_to_openapi_yaml() {
    let sys = RunningSystem::start();
    let Seeded { rate, unsubscribe, week, offer, correction } = seed(&sys).await;
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "50".into());
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261201".into());
    let mut cmd = Command::new(schemathesis());
    // Its own files (.schemathesis/) go to a scratch folder, not the clone.
    let scratch = std::env::temp_dir().join(format!("schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    cmd.current_dir(&scratch)
        .arg("--config-file")
        .arg(repo().join("tests/schemathesis.toml"))
        .arg("--no-color")
        .arg("run")
        .arg(repo().join("openapi.yaml"))
        .args(["--url", &sys.base_url])
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance,unsupported_method"])
        .args(["--max-examples", &examples])
        // One worker: hypothesis parses lambdas with `ast` while describing strategies, which on
        // CPython 3.11 fails now and then with SystemError when threads do it at once.
        .args(["--workers", "1"])
        .args(["--request-timeout", "15"]);
    if seed != "random" {
        cmd.args(["--seed", &seed]);
    }
    cmd.env("LINK_RATE_TOKEN", rate)
        .env("LINK_UNSUBSCRIBE_TOKEN", unsubscribe)
        .env("REPORT_WEEK", week)
        .env("OFFER_CONVERSATION", offer)
        .env("CORRECTION_REF", correction);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("schemathesis runs")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().skip_while(|l| !l.contains("SUMMARY")).collect::<Vec<_>>().join("\n");
    println!("{summary}");
    assert!(out.status.success(), "schemathesis found problems:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // "1959 generated, 1959 passed, ..." (a warning may mention generated data too).
    let generated = summary
        .lines()
        .find(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains(" generated"))
        .unwrap_or_default();
    assert!(generated.contains(" passed"), "no test cases ran: {generated}");
}
