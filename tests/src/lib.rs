//! Test kit: real moto (one per test binary), tables made from template.yaml, the real local runner,
//! and real API Gateway events. Nothing here fakes an AWS client.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use infra::local::moto::die_with_parent;
use infra::template::{LocalNames, Template};

pub use infra::http::{Reply, send};

/// A moto for this test binary: `MOTO_URL` if set, else one on a port the OS picks, dying with
/// this process (so a failed run leaves nothing behind).
pub fn moto_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("MOTO_URL") {
            return url;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        // moto is spawned from a thread that lives as long as the process, because Linux's
        // parent-death signal fires when the spawning *thread* exits; its runtime keeps draining
        // moto's output.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                match infra::local::moto::Moto::start(0).await {
                    Ok(moto) => {
                        let _ = tx.send(Ok(moto.endpoint.clone()));
                        std::future::pending::<()>().await;
                        drop(moto);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        rx.recv().expect("moto thread").expect("moto started")
    })
}

pub fn template() -> Template {
    Template::load(&infra::template::default_template_path()).expect("template.yaml loads")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A DynamoDB client on this binary's moto, with the same ring/rustls client the functions use.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let config = feedback_aws::sdk::local_sdk_config(moto_url(), "us-east-1").await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// A new, empty copy of the template's feedback table, named uniquely for this test.
pub async fn fresh_feedback_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = dynamodb().await;
    let names = LocalNames { prefix: format!("{}-", unique("t")), ..LocalNames::default() };
    let def = template()
        .tables()
        .unwrap()
        .into_iter()
        .find(|t| t.logical_id == "FeedbackTable")
        .expect("FeedbackTable in template");
    let name = names.physical(&def.logical_id);
    infra::local::tables::ensure_table(&client, &def, &name).await.expect("table created");
    (client, name)
}

/// A real API Gateway HTTP API (payload 2.0) event for `POST /ratings`, with the given body and
/// extra headers, as the function receives it behind the Lambda authorizer.
pub fn post_ratings_event(body: &str, headers: &[(&str, &str)]) -> String {
    api_event("POST /ratings", "/ratings", &[], body, headers)
}

/// A real API Gateway HTTP API (payload 2.0) event for any route: `route_key` as declared
/// (`POST /conversations/{id}/messages`), the concrete path and its parameters.
pub fn api_event(route_key: &str, path: &str, params: &[(&str, &str)], body: &str, headers: &[(&str, &str)]) -> String {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/apigw-v2-post-ratings.json")).unwrap();
    let method = route_key.split(' ').next().unwrap_or("POST");
    event["routeKey"] = serde_json::json!(route_key);
    event["requestContext"]["routeKey"] = serde_json::json!(route_key);
    event["rawPath"] = serde_json::json!(path);
    event["requestContext"]["http"]["path"] = serde_json::json!(path);
    event["requestContext"]["http"]["method"] = serde_json::json!(method);
    if !params.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> =
            params.iter().map(|(k, v)| ((*k).to_owned(), serde_json::json!(v))).collect();
        event["pathParameters"] = serde_json::Value::Object(map);
    }
    event["body"] = serde_json::json!(body);
    for (k, v) in headers {
        event["headers"][k.to_ascii_lowercase()] = serde_json::json!(v);
    }
    event.to_string()
}

/// An SNS client on this binary's moto.
pub async fn sns() -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&feedback_aws::sdk::local_sdk_config(moto_url(), "us-east-1").await)
}

/// A new SNS topic on this binary's moto, named uniquely for this test; returns its ARN.
pub async fn fresh_topic() -> (aws_sdk_sns::Client, String) {
    let client = sns().await;
    let arn = client.create_topic().name(unique("alerts")).send().await.expect("topic created").topic_arn.unwrap();
    (client, arn)
}

/// What moto recorded as published to `topic_arn`.
pub async fn notifications(moto: &str, topic_arn: &str) -> Vec<infra::local::moto::SentNotification> {
    infra::local::moto::sent_notifications(moto, |arn| arn == topic_arn).await.expect("moto data.json readable")
}

/// Every item of one conversation (`CONV#<id>`), keyed by sort key.
pub async fn conversation_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    conversation_id: &str,
) -> std::collections::BTreeMap<String, std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{conversation_id}")),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    out.items.unwrap_or_default().into_iter().map(|item| (item["sk"].as_s().unwrap().clone(), item)).collect()
}

/// Where `cargo build` put the workspace's binaries (this test binary lives in `<that>/deps`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf()
}

/// The real local runner (`make run`), on free ports, with its own moto; stopped on drop.
pub struct RunningSystem {
    child: Child,
    pub base_url: String,
    pub moto_url: String,
}

impl RunningSystem {
    pub fn start() -> RunningSystem {
        Self::start_with(&[])
    }

    /// As `start`, with more environment for the runner (e.g. `STAFF_SIGN_IN_URL`).
    pub fn start_with(env: &[(&str, &str)]) -> RunningSystem {
        let runner = bin_dir().join("feedback-local");
        assert!(runner.exists(), "{} missing: run `cargo build --workspace` (make test does)", runner.display());
        let mut cmd = Command::new(&runner);
        // Port 0 for both: the runner binds what the OS gives and says so on its first line.
        // (A port picked here and handed over could be taken meanwhile by a parallel test's
        // function host, and this test would then talk to that.)
        cmd.env("PORT", "0")
            .env("MOTO_PORT", "0")
            .env("ANNOUNCE", "json")
            .env_remove("MOTO_URL")
            .env("FUNCTION_LOGS", "off")
            .env("TEMPLATE", infra::template::default_template_path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("runner starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            // Keep draining, so the runner's later prints never meet a closed pipe.
            for _ in lines {}
        });
        let first = rx.recv_timeout(Duration::from_secs(90)).expect("the runner announces where it listens");
        let announced: serde_json::Value =
            serde_json::from_str(&first).unwrap_or_else(|e| panic!("runner's first line {first:?}: {e}"));
        RunningSystem {
            child,
            base_url: announced["api"].as_str().expect("api").to_owned(),
            moto_url: announced["moto"].as_str().expect("moto").to_owned(),
        }
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&feedback_aws::sdk::local_sdk_config(&self.moto_url, "us-east-1").await)
    }
}

impl Drop for RunningSystem {
    fn drop(&mut self) {
        // SIGTERM lets the runner stop its moto; then make sure it is gone.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

/// A rating as the rating function stores it, given at `at` (RFC 3339), then analysed and counted
/// as the analyze function does for its stream record. `via_link`: given through a follow-up link.
/// Returns the conversation id.
#[allow(clippy::too_many_arguments)]
pub async fn seed_rating(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    customer_id: &str,
    stars: u8,
    comment: Option<&str>,
    issue_types: &[&str],
    order_value_minor: Option<i64>,
    at: &str,
    via_link: bool,
) -> String {
    use feedback::insights::{AnalysisStore, FeedbackKind, StoredFeedback, analyse};
    use feedback::ratings::RatingStore;
    let at: feedback::Timestamp = at.parse().expect("RFC 3339");
    let conversation_id = unique("c");
    let submission = feedback::ratings::RatingSubmission {
        conversation_id: conversation_id.clone().into(),
        customer_id: customer_id.into(),
        stars,
        comment: comment.map(str::to_owned),
        channel: feedback::conversations::Channel::App,
        served_by: None,
        locale: None,
        issue_types: issue_types.iter().map(|t| (*t).to_owned()).collect(),
        order_value_minor,
        via_follow_up: via_link,
    };
    let key = via_link.then(|| unique("n"));
    let rating = feedback::ratings::Rating::new(submission, feedback::ratings::new_rating_id(at), at, key);
    let ratings = feedback_aws::dynamo::DynamoRatingStore::new(client.clone(), table, 400);
    assert!(ratings.insert_rating(&rating).await.expect("rating stored").is_none());
    let item = StoredFeedback {
        pk: format!("CONV#{conversation_id}"),
        sk: "RATING".into(),
        kind: FeedbackKind::Rating {
            stars,
            chosen_types: rating.submission.issue_types.clone(),
            order_value_minor,
            via_follow_up: via_link,
        },
        conversation_id: conversation_id.clone().into(),
        customer_id: customer_id.into(),
        text: rating.submission.comment.clone(),
        at,
    };
    let weeks = feedback::config::WeekSettings::default();
    let mut analyzer = feedback::analysis::Analyzer::new();
    let analysed = analyse(&mut analyzer, item, &weeks.shop_time_zone);
    let store = feedback_aws::dynamo::DynamoAnalysisStore::new(client.clone(), table, weeks.aggregate_shards);
    store.apply(&analysed).await.expect("analysis applied");
    conversation_id
}

/// moto's record of what was "sent": `/moto-api/data.json`.
pub async fn moto_data() -> serde_json::Value {
    infra::local::moto::data(moto_url()).await.expect("moto's data.json")
}
