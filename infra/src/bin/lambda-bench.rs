//! `make bench`: what a function costs at cold start, measured on a local Lambda Runtime API.
//!
//! For each run: exec the release binary with a sandbox environment, time exec → its first
//! `GET /2018-06-01/runtime/invocation/next` (init, including the DynamoDB warm-up against moto),
//! answer with one real API Gateway event, time until `POST .../response`, then read the process's
//! peak RSS (VmHWM) from /proc. Reports binary size (stripped) and medians/p90 over the runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infra::BoxError;
use infra::local::lambda_host::{FunctionSpec, sandbox_env};
use infra::local::moto::Moto;
use infra::local::runner::function_env;
use infra::template::{LocalNames, Template};

const RUNS: usize = 30;

struct Sample {
    init: Duration,
    first_invoke: Duration,
    peak_rss_kib: u64,
}

fn read_request(stream: &mut BufReader<TcpStream>) -> std::io::Result<(String, Vec<u8>)> {
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        stream.read_line(&mut h)?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body)?;
    Ok((line, body))
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn run_once(spec: &FunctionSpec, event: &str) -> Result<Sample, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let started = Instant::now();
    let mut child = Command::new(&spec.binary)
        .env_clear()
        .envs(sandbox_env(spec, addr))
        // BENCH_LOGS=1 shows the functions' own logs (timings of a slow first call).
        .stdout(if std::env::var_os("BENCH_LOGS").is_some() { Stdio::inherit() } else { Stdio::null() })
        .stderr(if std::env::var_os("BENCH_LOGS").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()?;
    let (stream, _) = listener.accept()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let (line, _) = read_request(&mut reader)?;
    let init = started.elapsed();
    assert!(line.contains("/invocation/next"), "unexpected first request {line}");
    let deadline = jiff::Timestamp::now().as_millisecond() + 10_000;
    let answered = Instant::now();
    write!(
        writer,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: bench-1\r\n\
         Lambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
         Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{event}",
        event.len()
    )?;
    // The runtime may open a new connection for its response.
    let (line, body) = match read_request(&mut reader) {
        Ok(r) if !r.0.is_empty() => r,
        _ => {
            let (s, _) = listener.accept()?;
            writer = s.try_clone()?;
            reader = BufReader::new(s);
            read_request(&mut reader)?
        }
    };
    let first_invoke = answered.elapsed();
    assert!(line.contains("/response"), "function answered with {line}");
    // A cold start that answers with an error measures the wrong path.
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(status) = answer["statusCode"].as_u64() {
        // A 4xx is a valid cold start too (the link page answers an unknown token with 404).
        assert!(status < 500, "{} answered {status}: {answer}", spec.name);
    }
    if let Some(failures) = answer["batchItemFailures"].as_array() {
        assert!(failures.is_empty(), "{} reported failures: {answer}", spec.name);
    }
    write!(writer, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")?;
    let peak_rss_kib = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    Ok(Sample { init, first_invoke, peak_rss_kib })
}

/// The first request a fresh instance serves: a realistic one for each function (the intake's is
/// a complaint, so it also publishes a staff alert).
fn first_event(fixture: &serde_json::Value, binary: &str, conversation: &str, run: usize) -> serde_json::Value {
    use serde_json::json;
    if binary == "weekly-priority" {
        // Monday 09:00 Shanghai after one of the seeded weeks: a full report with its three charts,
        // one e-mail and one topic message.
        return json!({"time": bench_monday(run).to_string()});
    }
    if binary == "analyze" {
        // A stream batch with one new customer message (the item itself is not in the table: the
        // analysis is computed, the conditional write finds nothing, as for an expired item).
        let image = json!({
            "pk": {"S": format!("CONV#{conversation}")}, "sk": {"S": "MSG#m-1"}, "entity": {"S": "message"},
            "conversation_id": {"S": conversation}, "customer_id": {"S": "u-1"}, "role": {"S": "customer"},
            "text": {"S": "快递一周了还没到，客服也不回复，太失望了"}, "sent_at": {"S": "2026-11-24T02:00:00.000Z"},
            "channel": {"S": "app"}, "message_id": {"S": "m-1"}, "fingerprint": {"S": "bench"},
            "received_at": {"S": "2026-11-24T02:00:01.000Z"}, "expires_at": {"N": "1795000000"}
        });
        return json!({"Records": [{
            "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image,
                         "SequenceNumber": "100", "SizeBytes": 300, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/bench/stream/1"
        }]});
    }
    if binary == "mail-events" {
        // One SES complaint delivered by SNS: one address suppressed.
        let complaint = json!({"eventType": "Complaint", "complaint": {
            "complainedRecipients": [{"emailAddress": format!("{conversation}@example.com")}],
            "complaintFeedbackType": "abuse"}});
        return json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": complaint.to_string()}}]});
    }
    let mut event = fixture.clone();
    event["headers"]["authorization"] = json!("Bearer k");
    let (route, path, body) = match binary {
        "keyword-intake" => (
            "POST /conversations/{id}/messages",
            format!("/conversations/{conversation}/messages"),
            json!({"messages": [
                {"message_id": "m-1", "role": "bot", "text": "您好，请问有什么可以帮您？", "sent_at": "2026-11-01T08:00:00Z",
                 "customer_id": "u-1", "channel": "app"},
                {"message_id": "m-2", "role": "customer", "text": "快递一周了还没到，再不处理我就投诉", "sent_at": "2026-11-01T08:01:00Z",
                 "customer_id": "u-1", "channel": "app"}]}),
        ),
        "rating-link" => ("GET /r/{token}", "/r/not-a-real-token".to_owned(), json!({})),
        "dashboard" => ("GET /dashboard/view", "/dashboard/view".to_owned(), json!({})),
        "customer-contact" => (
            "PUT /customers/{id}/contact",
            format!("/customers/{conversation}/contact"),
            json!({"email": "a@example.com", "consent": {"email": true, "sms": false}, "time_zone": "Asia/Shanghai", "locale": "zh-CN"}),
        ),
        "close-conversation" => (
            "POST /conversations/{id}/close",
            format!("/conversations/{conversation}/close"),
            json!({"resolved": false, "customer_id": "u-1"}),
        ),
        _ => (
            "POST /ratings",
            "/ratings".to_owned(),
            json!({"conversation_id": conversation, "customer_id": "u-1", "stars": 4, "channel": "web"}),
        ),
    };
    event["routeKey"] = json!(route);
    event["requestContext"]["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"] = json!({"id": conversation, "token": "not-a-real-token"});
    event["body"] = json!(body.to_string());
    if binary == "dashboard" {
        event["routeKey"] = json!("GET /dashboard/view");
        event["requestContext"]["http"]["method"] = json!("GET");
        event["rawQueryString"] = json!("week=2026-W47");
        event["queryStringParameters"] = json!({"week": "2026-W47"});
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": "bench"}, "scopes": null}});
        event["body"] = serde_json::Value::Null;
    }
    if binary == "authorize-caller" {
        event["type"] = json!("REQUEST");
        event["identitySource"] = json!(["Bearer k"]);
    }
    event
}

/// Monday 09:00 Shanghai (01:00 UTC) after the `run`th seeded week, newest first.
fn bench_monday(run: usize) -> jiff::Timestamp {
    let base: jiff::Timestamp = "2026-11-23T01:00:00Z".parse().expect("a time");
    base - jiff::Span::new().hours(24 * 7 * run as i64)
}

/// Aggregates for the weeks the weekly runs report on (and W47 for the dashboard): a handful of
/// issue types with counts and example comments, as the analysis writes them.
async fn seed_weeks(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), BoxError> {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let n = |v: u64| A::N(v.to_string());
    let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai")?;
    for run in 0..=RUNS {
        let week = feedback::time::IsoWeek::just_ended(bench_monday(run), &shanghai).to_string();
        for (shard, (issue_type, items)) in
            [("_all", 120), ("logistics", 30), ("quality", 18), ("refund_return", 9), ("service", 7)]
                .into_iter()
                .enumerate()
        {
            let mut item = std::collections::HashMap::from([
                ("pk".to_owned(), A::S(format!("AGG#{week}#SHARD#{}", shard % 8))),
                ("sk".to_owned(), A::S(format!("TYPE#{issue_type}"))),
                ("week".to_owned(), A::S(week.clone())),
                ("issue_type".to_owned(), A::S(issue_type.to_owned())),
                ("items".to_owned(), n(items)),
                ("severity_sum".to_owned(), n(items * 3)),
                ("sentiment_negative".to_owned(), n(items / 2)),
                ("sentiment_neutral".to_owned(), n(items / 4)),
                ("sentiment_positive".to_owned(), n(items / 4)),
                ("ratings".to_owned(), n(items / 3)),
                ("stars_1".to_owned(), n(items / 9)),
                ("stars_5".to_owned(), n(items / 9)),
                ("triggers".to_owned(), n(items / 10)),
                ("customers".to_owned(), A::Ss((0..items).map(|c| format!("u-{c}")).collect())),
            ]);
            if issue_type != "_all" {
                item.insert(
                    "example_0".into(),
                    A::M(
                        [
                            ("text".to_owned(), A::S("快递一个星期都没到，客服也不回复".into())),
                            ("severity".to_owned(), n(4)),
                            ("at".to_owned(), A::S("2026-11-18T03:00:00.000Z".into())),
                        ]
                        .into(),
                    ),
                );
            } else {
                item.insert("follow_ups_sent".into(), n(12));
                item.insert("follow_up_answers".into(), n(5));
            }
            client.put_item().table_name(table).set_item(Some(item)).send().await?;
        }
    }
    Ok(())
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let bin_dir = std::env::current_exe()?.parent().map(PathBuf::from).ok_or("no exe dir")?;
    let template = Template::load(&infra::template::default_template_path())?;
    let mut moto = Moto::start(0).await?;
    let names = LocalNames {
        prefix: "bench-".into(),
        region: "us-east-1".into(),
        account: infra::local::runner::ACCOUNT.into(),
        parameters: [
            ("CallerKeys".to_owned(), format!("bench:{}", feedback::auth::key_digest("k"))),
            ("DigestRecipients".to_owned(), "staff@example.com".to_owned()),
            ("StaffJwtIssuer".to_owned(), "https://issuer.bench.invalid".to_owned()),
            ("StaffJwtAudience".to_owned(), "bench".to_owned()),
        ]
        .into(),
    };
    let client = aws_sdk_dynamodb::Client::new(&feedback_aws::sdk::local_sdk_config(&moto.endpoint, "us-east-1").await);
    for t in template.tables()? {
        infra::local::tables::ensure_table(&client, &t, &names.physical(&t.logical_id)).await?;
    }
    let sns = aws_sdk_sns::Client::new(&feedback_aws::sdk::local_sdk_config(&moto.endpoint, "us-east-1").await);
    for topic in template.topics() {
        sns.create_topic().name(names.physical(&topic)).send().await?;
    }
    let ses = aws_sdk_sesv2::Client::new(&feedback_aws::sdk::local_sdk_config(&moto.endpoint, "us-east-1").await);
    let from = template.parameter_default("FollowUpFromAddress").unwrap_or_default();
    ses.create_email_identity().email_identity(from).send().await?;
    seed_weeks(&client, &names.physical("FeedbackTable")).await?;
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/apigw-v2-post-ratings.json"))?;
    println!(
        "{:<18} {:>9} {:>14} {:>14} {:>16} {:>12}",
        "function", "size", "init p50/p90", "1st call p50", "peak RSS p50/max", "runs"
    );
    let only = std::env::var("BENCH_ONLY").ok();
    for f in template.functions(&names)?.into_iter().filter(|f| only.as_ref().is_none_or(|o| *o == f.binary)) {
        let binary = bin_dir.join(&f.binary);
        let size = std::fs::metadata(&binary).map_err(|e| format!("{}: {e} (run make bench)", binary.display()))?.len();
        let spec = FunctionSpec {
            name: f.binary.clone(),
            binary: binary.clone(),
            env: function_env(&template, &f, &moto.endpoint, "us-east-1"),
            timeout: Duration::from_secs(f.timeout_secs),
            memory_mb: f.memory_mb,
            instances: 1,
            show_logs: false,
        };
        let mut samples = Vec::new();
        for i in 0..RUNS {
            let conversation = format!("bench-{i}-{}", ulid::Ulid::new());
            let event = first_event(&fixture, &f.binary, &conversation, i);
            samples.push(run_once(&spec, &event.to_string())?);
        }
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let init: Vec<f64> = samples.iter().map(|s| ms(&s.init)).collect();
        let call: Vec<f64> = samples.iter().map(|s| ms(&s.first_invoke)).collect();
        let rss: Vec<f64> = samples.iter().map(|s| s.peak_rss_kib as f64 / 1024.0).collect();
        println!(
            "{:<18} {:>6.2} MB {:>6.2}/{:>5.2} ms {:>11.2} ms {:>7.1}/{:>5.1} MiB {:>12}",
            f.binary,
            size as f64 / 1_000_000.0,
            percentile(init.clone(), 0.5),
            percentile(init, 0.9),
            percentile(call, 0.5),
            percentile(rss.clone(), 0.5),
            percentile(rss, 1.0),
            RUNS
        );
    }
    println!("targets (each API function): size <= 10 MB, init p50 <= 10 ms, peak RSS <= 24 MB");
    moto.stop().await;
    Ok(())
}
