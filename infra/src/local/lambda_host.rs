//! Plays the Lambda service for one function: runs its real `bootstrap` binary (one or more
//! instances) against a local Lambda Runtime API and hands it events, one at a time per instance,
//! exactly as a sandbox gets them (`GET /runtime/invocation/next`, then `/response` or `/error`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::BoxError;

#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function's name in logs and in `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub instances: usize,
    /// Copy the function's stdout/stderr to ours, prefixed with its name.
    pub show_logs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the function returned an error: {0}")]
    Function(String),
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the function host is gone")]
    HostGone,
}

struct Invocation {
    payload: Bytes,
    reply: oneshot::Sender<Result<Bytes, InvokeError>>,
}

struct RuntimeApi {
    queue: Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Result<Bytes, InvokeError>>>>,
    function_arn: String,
    timeout: Duration,
}

pub struct FunctionHost {
    pub name: String,
    queue: mpsc::Sender<Invocation>,
    timeout: Duration,
}

impl FunctionHost {
    /// Starts the Runtime API and the function's instances (restarted if they exit).
    pub async fn start(spec: FunctionSpec, arn: String) -> Result<Arc<FunctionHost>, BoxError> {
        if !spec.binary.exists() {
            return Err(format!(
                "{} not found: build the functions first (cargo build --workspace)",
                spec.binary.display()
            )
            .into());
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let runtime_api = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        let api = Arc::new(RuntimeApi {
            queue: Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            function_arn: arn,
            timeout: spec.timeout,
        });
        tokio::spawn(serve_runtime_api(listener, api));
        for instance in 0..spec.instances.max(1) {
            tokio::spawn(supervise(spec.clone(), runtime_api, instance));
        }
        Ok(Arc::new(FunctionHost { name: spec.name, queue: tx, timeout: spec.timeout }))
    }

    /// Invokes the function synchronously (RequestResponse) with a JSON event.
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> Result<Bytes, InvokeError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Invocation { payload: payload.into(), reply }).await.map_err(|_| InvokeError::HostGone)?;
        // Queueing time counts too: a cold instance still starting is part of a real invocation.
        match tokio::time::timeout(self.timeout + Duration::from_secs(5), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(InvokeError::HostGone),
            Err(_) => Err(InvokeError::Timeout(self.timeout)),
        }
    }
}

/// The environment a Lambda sandbox gives a provided.al2023 function.
pub fn sandbox_env(spec: &FunctionSpec, runtime_api: SocketAddr) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), spec.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), spec.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{}", spec.name)),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "local/[$LATEST]0".into()),
        ("_HANDLER".into(), "bootstrap".into()),
    ];
    for passthrough in ["PATH", "RUST_BACKTRACE", "RUST_LOG", "TZ"] {
        if let Ok(v) = std::env::var(passthrough) {
            env.push((passthrough.into(), v));
        }
    }
    env.extend(spec.env.iter().cloned());
    env
}

async fn supervise(spec: FunctionSpec, runtime_api: SocketAddr, instance: usize) {
    loop {
        let mut cmd = Command::new(&spec.binary);
        cmd.env_clear()
            .envs(sandbox_env(&spec, runtime_api))
            .stdin(Stdio::null())
            .stdout(if spec.show_logs { Stdio::piped() } else { Stdio::null() })
            .stderr(if spec.show_logs { Stdio::piped() } else { Stdio::null() })
            .kill_on_drop(true);
        crate::local::moto::die_with_parent(cmd.as_std_mut());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(function = %spec.name, error = %e, "cannot start function");
                return;
            }
        };
        let prefix = format!("[{}#{instance}]", spec.name);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(copy_lines(out, prefix.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(copy_lines(err, prefix.clone()));
        }
        let status = child.wait().await;
        tracing::warn!(function = %spec.name, instance, ?status, "function instance exited; restarting");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn copy_lines(stream: impl tokio::io::AsyncRead + Unpin, prefix: String) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{prefix} {line}");
    }
}

async fn serve_runtime_api(listener: TcpListener, api: Arc<RuntimeApi>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| runtime_route(api.clone(), req));
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

async fn runtime_route(
    api: Arc<RuntimeApi>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    let response = match (method.as_str(), rest.split('/').collect::<Vec<_>>().as_slice()) {
        ("GET", ["invocation", "next"]) => {
            // Long poll, like the real API: an instance waits here until there is work.
            let next = api.queue.lock().await.recv().await;
            let Some(invocation) = next else { return Ok(reply(500, "host stopped")) };
            let request_id = ulid::Ulid::new().to_string().to_lowercase();
            let deadline = jiff::Timestamp::now().as_millisecond() + api.timeout.as_millis() as i64;
            api.pending.lock().await.insert(request_id.clone(), invocation.reply);
            let mut r = reply(200, invocation.payload);
            let h = r.headers_mut();
            h.insert("lambda-runtime-aws-request-id", request_id.parse().expect("ulid is a valid header"));
            h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().expect("digits"));
            h.insert("lambda-runtime-invoked-function-arn", api.function_arn.parse().expect("arn is ascii"));
            h.insert(
                "lambda-runtime-trace-id",
                format!("Root=1-{:08x}-{};Sampled=0", deadline / 1000, &request_id[..24]).parse().expect("ascii"),
            );
            h.insert("content-type", "application/json".parse().expect("static"));
            r
        }
        ("POST", ["invocation", id, "response"]) => match api.pending.lock().await.remove(*id) {
            Some(tx) => {
                let _ = tx.send(Ok(body));
                reply(202, r#"{"status":"OK"}"#)
            }
            None => reply(400, r#"{"errorType":"InvalidRequestID"}"#),
        },
        ("POST", ["invocation", id, "error"]) => match api.pending.lock().await.remove(*id) {
            Some(tx) => {
                let _ = tx.send(Err(InvokeError::Function(String::from_utf8_lossy(&body).into_owned())));
                reply(202, r#"{"status":"OK"}"#)
            }
            None => reply(400, r#"{"errorType":"InvalidRequestID"}"#),
        },
        ("POST", ["init", "error"]) => {
            tracing::error!(body = %String::from_utf8_lossy(&body), "function init failed");
            reply(202, r#"{"status":"OK"}"#)
        }
        _ => reply(404, r#"{"errorType":"NotFound"}"#),
    };
    Ok(response)
}
