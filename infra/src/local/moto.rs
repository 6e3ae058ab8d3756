//! moto in server mode: the local DynamoDB, SES v2 and SNS. Started from the project's venv.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::BoxError;

pub struct Moto {
    pub endpoint: String,
    child: Option<Child>,
}

/// Where moto_server is: `MOTO_SERVER`, else the venv the Makefile creates, else `PATH`.
pub fn moto_server_path() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return p.into();
    }
    let venv = std::env::var("FEEDBACK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/feedback-loop/venv"));
    let candidate = venv.join("bin/moto_server");
    if candidate.exists() { candidate } else { "moto_server".into() }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// Our launcher (see the file): moto's server with transactions that do not copy whole tables.
const LAUNCHER: &str = include_str!("moto_server.py");

/// The command that serves moto on 127.0.0.1:`port`: our launcher with the venv's Python, or
/// `MOTO_SERVER` as given (then unpatched). Our launcher announces the port it bound
/// (`MOTO_PORT=<n>` on stdout), so port 0 is safe with it.
pub fn server_command(port: u16) -> std::process::Command {
    let mut cmd = match launcher_python() {
        Some(python) => {
            let mut c = std::process::Command::new(python);
            c.args(["-c", LAUNCHER]);
            c
        }
        None => std::process::Command::new(moto_server_path()),
    };
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    cmd
}

/// The venv's Python that runs our launcher, unless `MOTO_SERVER` names another moto.
fn launcher_python() -> Option<PathBuf> {
    let python = moto_server_path().with_file_name("python");
    (std::env::var_os("MOTO_SERVER").is_none() && python.exists()).then_some(python)
}

impl Moto {
    /// Starts moto on 127.0.0.1:`port` and waits until it answers: through our launcher with the
    /// venv's Python, or `MOTO_SERVER` as given. Port 0: the launcher binds a port the OS picks and
    /// says which, so two stacks started side by side never share one. (Picking a free port first
    /// and handing it over is a race, which only `MOTO_SERVER`'s unpatched moto still runs.)
    pub async fn start(port: u16) -> Result<Moto, BoxError> {
        let announced = port == 0 && launcher_python().is_some();
        let port = if port == 0 && !announced { free_port() } else { port };
        let path = moto_server_path();
        let mut cmd = Command::from(server_command(port));
        let stdout = if announced { Stdio::piped() } else { Stdio::null() };
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::null()).kill_on_drop(true);
        die_with_parent(cmd.as_std_mut());
        let mut child = cmd.spawn().map_err(|e| {
            format!("cannot start {} ({e}); run `make venv` (or set MOTO_SERVER) first", path.display())
        })?;
        let port = match child.stdout.take() {
            Some(out) => announced_port(out).await?,
            None => port,
        };
        let moto = Moto { endpoint: format!("http://127.0.0.1:{port}"), child: Some(child) };
        moto.wait_ready(Duration::from_secs(30)).await?;
        Ok(moto)
    }

    /// Uses a moto someone else started.
    pub async fn existing(endpoint: &str) -> Result<Moto, BoxError> {
        let moto = Moto { endpoint: endpoint.trim_end_matches('/').to_owned(), child: None };
        moto.wait_ready(Duration::from_secs(10)).await?;
        Ok(moto)
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), BoxError> {
        let started = Instant::now();
        let url = format!("{}/moto-api/", self.endpoint);
        loop {
            if let Ok((200, _)) = crate::http::get(&url).await {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(format!("moto did not answer at {url} within {limit:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// Reads the launcher's `MOTO_PORT=<n>` line, then keeps draining its stdout (a closed pipe would
/// fail moto's next print).
async fn announced_port(out: tokio::process::ChildStdout) -> Result<u16, BoxError> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(out).lines();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(port) = line.strip_prefix("MOTO_PORT=").and_then(|p| p.trim().parse::<u16>().ok()) {
                return Ok(Some(port));
            }
        }
        Ok::<_, std::io::Error>(None)
    });
    let port = match read.await {
        Ok(Ok(Some(port))) => port,
        Ok(Ok(None)) => return Err("moto exited before it listened (is the venv complete? `make venv`)".into()),
        Ok(Err(e)) => return Err(format!("cannot read moto's announcement: {e}").into()),
        Err(_) => return Err("moto did not listen within 30 s".into()),
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(port)
}

/// Children die with this process even if it is killed (Linux: PR_SET_PDEATHSIG). The signal fires
/// when the *thread* that spawned the child exits, so spawn long-lived children from a long-lived thread.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGTERM: u64 = 15;
    // SAFETY: prctl with integer arguments is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
            Ok(())
        });
    }
}

/// A message moto recorded as published to an SNS topic.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SentNotification {
    pub topic_arn: String,
    pub message_id: String,
    pub message: String,
    pub subject: Option<String>,
    /// Message attributes as `name -> string value`.
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// moto's record of everything (`/moto-api/data.json`: sent mail, SMS, topic messages). moto
/// answers it with a 500 now and then while other requests are in flight (it serialises its whole
/// state); a few quick retries get it.
pub async fn data(endpoint: &str) -> Result<serde_json::Value, BoxError> {
    let mut last = String::new();
    for attempt in 0..8u32 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(5))).await;
        }
        match crate::http::get(&format!("{endpoint}/moto-api/data.json")).await {
            Ok((200, body)) => match serde_json::from_slice(&body) {
                Ok(data) => return Ok(data),
                Err(e) => last = format!("not JSON: {e}"),
            },
            Ok((status, _)) => last = format!("answered {status}"),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("moto data.json: {last} (8 attempts)").into())
}

/// What moto says was published to the topics whose ARN passes `wanted` (`/moto-api/data.json`).
pub async fn sent_notifications(
    endpoint: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<SentNotification>, BoxError> {
    let data = data(endpoint).await?;
    let mut out = Vec::new();
    for topic in data["sns"]["Topic"].as_array().into_iter().flatten() {
        let arn = topic["arn"].as_str().unwrap_or_default();
        if !wanted(arn) {
            continue;
        }
        // moto keeps (message_id, message, subject, attributes, group_id) tuples.
        for sent in topic["sent_notifications"].as_array().into_iter().flatten() {
            let attributes = sent[3]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v["Value"].as_str().unwrap_or_default().to_owned()))
                .collect();
            out.push(SentNotification {
                topic_arn: arn.to_owned(),
                message_id: sent[0].as_str().unwrap_or_default().to_owned(),
                message: sent[1].as_str().unwrap_or_default().to_owned(),
                subject: sent[2].as_str().map(str::to_owned),
                attributes,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stand-in for moto that answers data.json with a 500 `fails` times, then with JSON.
    async fn flaky_moto(fails: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let (status, body) =
                    if n < fails { ("500 Internal Server Error", "oops") } else { ("200 OK", r#"{"ses": {}}"#) };
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        endpoint
    }

    #[tokio::test]
    async fn data_json_is_read_through_moto_s_passing_500s() {
        let endpoint = flaky_moto(3).await;
        assert_eq!(super::data(&endpoint).await.unwrap(), serde_json::json!({"ses": {}}));
        let never = flaky_moto(usize::MAX).await;
        assert!(super::data(&never).await.unwrap_err().to_string().contains("answered 500"));
    }
}
