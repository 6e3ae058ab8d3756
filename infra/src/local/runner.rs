//! The whole system on one machine: moto, the template's tables, every function's binary behind
//! its own Runtime API, and the HTTP API in front. `make run` and the end-to-end tests use this.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;

use crate::local::gateway::{Authorizer, AuthorizerKind, Gateway, LocalHandler, Route};
use crate::local::lambda_host::{FunctionHost, FunctionSpec};
use crate::local::moto::Moto;
use crate::template::{AuthorizerDef, FunctionDef, LocalNames, Template};
use crate::{BoxError, DEV_CALLER_KEY};

pub const ACCOUNT: &str = "123456789012";
/// What `{{resolve:...}}` secrets are locally (e.g. the link signing key). Never valid in AWS.
pub const LOCAL_SECRET: &str = "local-development-secret-not-for-production-use";

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub template: PathBuf,
    /// Where the function binaries are (`target/debug`): by default, beside the runner itself.
    pub bin_dir: PathBuf,
    /// Use this moto instead of starting one.
    pub moto_url: Option<String>,
    pub moto_port: u16,
    pub port: u16,
    pub region: String,
    /// Prefix for table names (tests sharing a moto use a unique one).
    pub name_prefix: String,
    pub instances_per_function: usize,
    pub show_function_logs: bool,
    /// The one token the local JWT authorizer admits.
    pub staff_dev_token: String,
    /// A sign-in service for the dashboard (`STAFF_SIGN_IN_URL`, `STAFF_CLIENT_ID`): locally
    /// none, unless given (the browser test plays one).
    pub staff_sign_in: Option<(String, String)>,
}

impl RunnerConfig {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let bin_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from)).unwrap_or_default();
        RunnerConfig {
            template: var("TEMPLATE").map(PathBuf::from).unwrap_or_else(|| {
                let here = PathBuf::from("template.yaml");
                if here.exists() { here } else { crate::template::default_template_path() }
            }),
            bin_dir: var("FUNCTIONS_DIR").map(PathBuf::from).unwrap_or(bin_dir),
            moto_url: var("MOTO_URL"),
            moto_port: var("MOTO_PORT").and_then(|p| p.parse().ok()).unwrap_or(5050),
            port: var("PORT").and_then(|p| p.parse().ok()).unwrap_or(3000),
            region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            name_prefix: var("LOCAL_NAME_PREFIX").unwrap_or_default(),
            instances_per_function: var("LOCAL_INSTANCES").and_then(|p| p.parse().ok()).unwrap_or(2),
            show_function_logs: var("FUNCTION_LOGS").is_none_or(|v| v != "off"),
            staff_dev_token: var("STAFF_DEV_TOKEN").unwrap_or_else(|| crate::STAFF_DEV_TOKEN.to_owned()),
            staff_sign_in: var("STAFF_SIGN_IN_URL").zip(var("STAFF_CLIENT_ID")),
        }
    }
}

/// What a function's process gets locally besides the sandbox's own variables: the SDK pointed at
/// moto with dummy credentials, Lambda's logging settings, and its environment from the template.
pub fn function_env(template: &Template, f: &FunctionDef, moto_endpoint: &str, region: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL".into(), moto_endpoint.to_owned()),
        ("AWS_REGION".into(), region.to_owned()),
        ("AWS_DEFAULT_REGION".into(), region.to_owned()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
    env.extend(template.logging_env());
    env.extend(f.environment.iter().map(|(k, v)| {
        // Deploy-time secrets (`{{resolve:secretsmanager:...}}`) have a fixed local stand-in.
        let v = if v.contains("{{resolve:") { LOCAL_SECRET.to_owned() } else { v.clone() };
        (k.clone(), v)
    }));
    env
}

pub struct LocalStack {
    pub moto: Moto,
    pub address: SocketAddr,
    pub names: LocalNames,
    pub hosts: BTreeMap<String, Arc<FunctionHost>>,
    pub routes: Vec<String>,
}

pub async fn start(cfg: RunnerConfig) -> Result<LocalStack, BoxError> {
    let template = Template::load(&cfg.template)?;
    let moto = match &cfg.moto_url {
        Some(url) => Moto::existing(url).await?,
        None => Moto::start(cfg.moto_port).await?,
    };
    let mut names = LocalNames {
        prefix: cfg.name_prefix.clone(),
        region: cfg.region.clone(),
        account: ACCOUNT.into(),
        parameters: BTreeMap::new(),
    };
    names.parameters.insert("CallerKeys".into(), format!("local-dev:{}", feedback::auth::key_digest(DEV_CALLER_KEY)));
    names.parameters.insert("DigestRecipients".into(), crate::LOCAL_DIGEST_RECIPIENTS.into());
    // Not used locally (the dev token stands in for the identity provider), but required to deploy.
    names.parameters.insert("StaffJwtIssuer".into(), "https://issuer.local.invalid".into());
    names.parameters.insert("StaffJwtAudience".into(), "feedback-loop-local".into());

    let sdk = feedback_aws::sdk::local_sdk_config(&moto.endpoint, &cfg.region).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for table in template.tables()? {
        let name = names.physical(&table.logical_id);
        let created = crate::local::tables::ensure_table(&dynamodb, &table, &name).await?;
        tracing::info!(table = %name, created, "table ready");
    }
    let mut queue_urls: BTreeMap<String, String> = BTreeMap::new();
    for queue in template.queues() {
        let created = crate::local::streams::aws_json(
            &moto.endpoint,
            &cfg.region,
            "sqs",
            "AmazonSQS.CreateQueue",
            json!({ "QueueName": names.physical(&queue) }),
        )
        .await?;
        let url = created["QueueUrl"].as_str().unwrap_or_default().to_owned();
        tracing::info!(queue = %url, "queue ready");
        queue_urls.insert(queue, url);
    }
    let sns = aws_sdk_sns::Client::new(&sdk);
    let mut topic_arns = Vec::new();
    for topic in template.topics() {
        let name = names.physical(&topic);
        let arn = sns.create_topic().name(&name).send().await?.topic_arn.unwrap_or_default();
        tracing::info!(topic = %arn, "topic ready");
        topic_arns.push(arn);
    }

    // Listen first: functions need the API's address (PUBLIC_BASE_URL in links they send).
    let listener = TcpListener::bind(("127.0.0.1", cfg.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", cfg.port))?;
    let address = listener.local_addr()?;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let mut hosts = BTreeMap::new();
    for f in template.functions(&names)? {
        let mut env = function_env(&template, &f, &moto.endpoint, &cfg.region);
        for (name, value) in env.iter_mut() {
            if name == "PUBLIC_BASE_URL" {
                *value = format!("http://{address}");
            }
            // `STAFF_LOCALE=en make run`: the template's StaffLocale for this run.
            if name == "STAFF_LOCALE"
                && let Some(locale) = std::env::var("STAFF_LOCALE").ok().filter(|l| !l.trim().is_empty())
            {
                *value = locale;
            }
            match (name.as_str(), &cfg.staff_sign_in) {
                ("STAFF_SIGN_IN_URL", Some((url, _))) => *value = url.clone(),
                ("STAFF_CLIENT_ID", Some((_, client))) => *value = client.clone(),
                _ => {}
            }
            if name == "FOLLOW_UP_FROM" {
                // moto, like SES, sends only from verified identities.
                ses.create_email_identity().email_identity(value.as_str()).send().await?;
            }
        }
        let physical = names.physical(&f.logical_id);
        let spec = FunctionSpec {
            name: physical.clone(),
            binary: cfg.bin_dir.join(&f.binary),
            env,
            timeout: std::time::Duration::from_secs(f.timeout_secs),
            memory_mb: f.memory_mb,
            instances: cfg.instances_per_function,
            show_logs: cfg.show_function_logs,
        };
        let arn = format!("arn:aws:lambda:{}:{ACCOUNT}:function:{physical}", cfg.region);
        hosts.insert(f.logical_id.clone(), (FunctionHost::start(spec, arn).await?, f));
    }

    // The event source mappings: poll each table stream a function reads and deliver like Lambda.
    let mut stream_arns = Vec::new();
    for (host, f) in hosts.values() {
        for source in &f.stream_sources {
            let table = names.physical(&source.table);
            let arn =
                dynamodb.describe_table().table_name(&table).send().await?.table.and_then(|t| t.latest_stream_arn);
            let Some(arn) = arn else {
                return Err(format!("table {table} has no stream, but {} reads it", f.logical_id).into());
            };
            stream_arns.push(arn.clone());
            let function_arn =
                format!("arn:aws:lambda:{}:{ACCOUNT}:function:{}", cfg.region, names.physical(&f.logical_id));
            let queue = source.on_failure_queue.as_ref().and_then(|q| queue_urls.get(q)).cloned();
            tokio::spawn(poll_stream(
                host.clone(),
                source.clone(),
                arn,
                function_arn,
                moto.endpoint.clone(),
                cfg.region.clone(),
                queue,
            ));
        }
    }

    // Schedules, by event name and by function logical id: (host, input).
    let mut schedules: BTreeMap<String, (Arc<FunctionHost>, String)> = BTreeMap::new();
    for (host, f) in hosts.values() {
        for (event, input) in &f.schedules {
            schedules.insert(event.clone(), (host.clone(), input.clone()));
            schedules.insert(f.logical_id.clone(), (host.clone(), input.clone()));
        }
    }

    let apis = template.http_apis();
    let mut routes = Vec::new();
    let mut authorizers: BTreeMap<(String, String), Arc<Authorizer>> = BTreeMap::new();
    for (host, f) in hosts.values() {
        for r in &f.http_routes {
            let api = apis.iter().find(|a| a.logical_id == r.api);
            let auth_name = match (&r.authorizer, api.and_then(|a| a.default_authorizer.clone())) {
                (Some(n), _) if n == "NONE" => None,
                (Some(n), _) => Some(n.clone()),
                (None, default) => default,
            };
            let authorizer = match (auth_name, api) {
                (Some(name), Some(api)) => {
                    let def = api.authorizers.get(&name).ok_or_else(|| format!("authorizer {name} is not declared"))?;
                    let key = (api.logical_id.clone(), name.clone());
                    let kind = match def {
                        AuthorizerDef::Lambda { function, identity_headers, simple_responses } => {
                            let auth_host = hosts
                                .get(function)
                                .ok_or_else(|| format!("authorizer function {function} not found"))?;
                            AuthorizerKind::Lambda {
                                host: auth_host.0.clone(),
                                identity_headers: identity_headers.clone(),
                                simple_responses: *simple_responses,
                            }
                        }
                        AuthorizerDef::Jwt { .. } => AuthorizerKind::DevJwt { token: cfg.staff_dev_token.clone() },
                    };
                    Some(authorizers.entry(key).or_insert_with(|| Arc::new(Authorizer { name, kind })).clone())
                }
                _ => None,
            };
            routes.push(Route { method: r.method.clone(), path: r.path.clone(), host: host.clone(), authorizer });
        }
    }
    let route_keys: Vec<String> = routes.iter().map(Route::route_key).collect();
    let listing = json!({
        "routes": route_keys,
        "moto": moto.endpoint,
        "functions": hosts.keys().collect::<Vec<_>>(),
        "topics": topic_arns,
        "streams": stream_arns,
        "queues": queue_urls.values().collect::<Vec<_>>(),
        "local": ["GET /_local/", "GET /_local/notifications", "POST /_local/schedules/{name}?time=<RFC 3339>",
                  "POST /_local/demo?weeks=5&per_week=160"],
        "schedules": schedules.keys().collect::<Vec<_>>(),
    });
    let moto_endpoint = moto.endpoint.clone();
    let schedules = Arc::new(schedules);
    let demo_table = names.physical("FeedbackTable");
    let local: LocalHandler = Arc::new(move |what: String, query: String, _body| {
        let listing = listing.clone();
        let (moto_endpoint, topic_arns, schedules) = (moto_endpoint.clone(), topic_arns.clone(), schedules.clone());
        let (dynamodb, demo_table) = (dynamodb.clone(), demo_table.clone());
        Box::pin(async move {
            if let Some(name) = what.strip_prefix("POST /schedules/") {
                return fire_schedule(&schedules, name, &query).await;
            }
            if what == "POST /demo" {
                let param = |name: &str, default: usize| {
                    query
                        .split('&')
                        .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(default)
                };
                let (weeks, per_week) = (param("weeks", 5).clamp(2, 12), param("per_week", 160).clamp(10, 2000));
                let base = format!("http://{address}");
                return match crate::demo::seed(&base, DEV_CALLER_KEY, &dynamodb, &demo_table, weeks, per_week).await {
                    Ok(summary) => (200, json!(summary)),
                    Err(e) => (500, json!({ "message": format!("demo seeding failed: {e}") })),
                };
            }
            match what.as_str() {
                "GET /" | "GET " => (200, listing),
                // What the functions published to this stack's topics (staff alerts), as moto recorded it.
                "GET /notifications" => {
                    match crate::local::moto::sent_notifications(&moto_endpoint, |arn| {
                        topic_arns.iter().any(|t| t == arn)
                    })
                    .await
                    {
                        Ok(sent) => (200, json!({ "notifications": sent })),
                        Err(e) => (502, json!({ "message": format!("cannot read moto: {e}") })),
                    }
                }
                _ => (404, json!({ "message": "Not Found" })),
            }
        })
    });
    let gateway = Arc::new(Gateway {
        routes,
        api_id: "local".into(),
        region: cfg.region.clone(),
        account: ACCOUNT.into(),
        local: Some(local),
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| gateway.clone().handle(req));
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(LocalStack {
        moto,
        address,
        names,
        hosts: hosts.into_iter().map(|(k, (h, _))| (k, h)).collect(),
        routes: route_keys,
    })
}

/// Plays one event source mapping: polls the stream every 250 ms (Lambda polls about 4 times a
/// second), keeps the records the filters let through, and delivers them in batches.
async fn poll_stream(
    host: Arc<FunctionHost>,
    source: crate::template::StreamSource,
    stream_arn: String,
    function_arn: String,
    endpoint: String,
    region: String,
    queue_url: Option<String>,
) {
    let mut reader = crate::local::streams::StreamReader::new(&endpoint, &region, &stream_arn);
    loop {
        match reader.poll(source.batch_size).await {
            Ok(records) => {
                let wanted: Vec<serde_json::Value> = records
                    .into_iter()
                    .filter(|r| {
                        source.filters.is_empty() || source.filters.iter().any(|f| crate::local::streams::matches(f, r))
                    })
                    .collect();
                if !wanted.is_empty() {
                    let delivery = crate::local::streams::Delivery {
                        host: &host,
                        function_arn: &function_arn,
                        max_retries: source.max_retries,
                        partial_batch_responses: source.partial_batch_responses,
                        on_failure: queue_url.as_deref().map(|q| (endpoint.as_str(), region.as_str(), q)),
                    };
                    let delivered = crate::local::streams::deliver(&delivery, wanted).await;
                    tracing::debug!(?delivered, "stream batch delivered");
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e, stream = %stream_arn, "stream poll failed"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Fires a schedule now, as EventBridge Scheduler would at `time` (query `time=<RFC 3339>`,
/// default now): the function gets the schedule's input with the scheduled time filled in.
async fn fire_schedule(
    schedules: &BTreeMap<String, (Arc<FunctionHost>, String)>,
    name: &str,
    query: &str,
) -> (u16, serde_json::Value) {
    let Some((host, input)) = schedules.get(name) else {
        return (
            404,
            json!({ "message": format!("no schedule {name}"), "schedules": schedules.keys().collect::<Vec<_>>() }),
        );
    };
    let time = query
        .split('&')
        .find_map(|p| p.strip_prefix("time="))
        .map(crate::local::gateway::percent_decode)
        .unwrap_or_else(|| jiff::Timestamp::now().to_string());
    if time.parse::<jiff::Timestamp>().is_err() {
        return (
            400,
            json!({ "message": format!("time {time:?} is not an RFC 3339 instant, e.g. 2026-12-01T10:00:00Z") }),
        );
    }
    let payload = input.replace("<aws.scheduler.scheduled-time>", &time);
    match host.invoke(bytes::Bytes::from(payload)).await {
        Ok(body) => (200, serde_json::from_slice(&body).unwrap_or(json!({ "raw": String::from_utf8_lossy(&body) }))),
        Err(e) => (502, json!({ "message": format!("the function failed: {e}") })),
    }
}
