//! The dashboard in a real browser: headless Chromium (Debian's `chromium`; `make test` installs
//! it) opens the page from the real local runner after the demo is seeded, signs in with the dev
//! token, and must render the four charts and the ranked issues with no console error, no script
//! exception and no CSP violation. It then follows the "previous week" link (the page's script)
//! and saves screenshots under the test's output directory.
//!
//! Driven over the DevTools protocol with a few lines of WebSocket (no browser-automation crate).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use testkit::RunningSystem;
use tungstenite::{Message, WebSocket};

fn chromium_path() -> String {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return p;
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if std::path::Path::new(p).exists() {
            return p.to_owned();
        }
    }
    panic!("no Chromium found: `make test` installs Debian's chromium (or set CHROMIUM=/path/to/chrome)");
}

struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
    /// Console errors, exceptions and log errors seen so far.
    problems: Vec<String>,
    _profile: std::path::PathBuf,
}

impl Browser {
    fn launch() -> Browser {
        let profile = std::env::temp_dir().join(format!("chromium-{}", testkit::unique("profile")));
        let mut child = Command::new(chromium_path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
                "--window-size=1280,1800",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(30)).expect("chromium printed its DevTools address");
        let host = url.trim_start_matches("ws://").split('/').next().unwrap().to_owned();
        let stream = TcpStream::connect(&host).unwrap();
        // The handshake may take a while on a busy machine: a short read timeout during it would
        // interrupt it. Short reads (to interleave events with waiting) start after it.
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools WebSocket");
        ws.get_ref().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Browser { child, ws, next_id: 0, session: None, problems: Vec::new(), _profile: profile }
    }

    /// Reads one message if one arrives within the socket's read timeout.
    fn read(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection lost: {e}"),
        }
    }

    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") if matches!(params["type"].as_str(), Some("error" | "assert")) => {
                self.problems.push(format!("console.error: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => {
                self.problems.push(format!("exception: {}", params["exceptionDetails"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.problems.push(format!("log: {} {}", params["entry"]["text"], params["entry"]["url"]));
            }
            _ => {}
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::Text(msg.to_string().into())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            let Some(m) = self.read() else { continue };
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {}", m["error"]);
                return m["result"].clone();
            }
            self.note(&m);
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true, reading events meanwhile.
    fn wait_for(&mut self, expression: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.eval(expression) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {expression}; body: {}",
                self.eval("document.body.innerText.slice(0, 500)")
            );
            while let Some(m) = self.read() {
                self.note(&m);
            }
        }
    }

    fn screenshot(&mut self, name: &str) -> std::path::PathBuf {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard_browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_its_charts_and_ranking_in_chromium_without_console_errors() {
    let chromium = chromium_path();
    let sys = RunningSystem::start();
    // A small demo: three weeks, through the real functions and schedules.
    let demo =
        testkit::send("POST", &format!("{}/_local/demo?weeks=3&per_week=40", sys.base_url), &[], "").await.unwrap();
    assert_eq!(demo.status, 200, "{:?}", demo.json());
    let demo = demo.json();
    let week = demo["report_week"].as_str().expect("the demo made last week's report").to_owned();
    println!("demo: {demo}");

    let base = sys.base_url.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch();
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached =
            b.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }));
        b.session = attached["sessionId"].as_str().map(str::to_owned);
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.call(domain, json!({}));
        }
        b.call("Emulation.setDeviceMetricsOverride", json!({"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": false}));
        b.call("Page.navigate", json!({ "url": format!("{base}/dashboard?week={week}#token={}", infra::STAFF_DEV_TOKEN) }));
        b.wait_for("document.body && document.body.dataset.state === 'ready'", Duration::from_secs(30));

        let figures = b.eval(
            "Array.from(document.querySelectorAll('figure')).map(f => ({id: f.id, \
               shapes: f.querySelectorAll('svg rect, svg polyline, svg circle, svg path').length, \
               width: f.querySelector('svg').getBoundingClientRect().width, \
               text: f.querySelector('svg').textContent}))",
        );
        let figures = figures.as_array().unwrap().clone();
        let ids: Vec<&str> = figures.iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["csat-trend", "sentiment-split", "issue-ranking", "follow-up-funnel"]);
        for f in &figures {
            assert!(f["width"].as_f64().unwrap() > 300.0, "{} rendered {}px wide", f["id"], f["width"]);
            assert!(f["shapes"].as_u64().unwrap() >= 5, "{} has {} shapes", f["id"], f["shapes"]);
        }
        let ranking = b.eval(
            "Array.from(document.querySelectorAll('#ranking > li')).map(li => li.dataset.issueType)",
        );
        let ranking: Vec<String> = serde_json::from_value(ranking).unwrap();
        assert!(ranking.len() >= 3, "{ranking:?}");
        assert_eq!(ranking[0], "logistics", "the demo's story: delivery complaints lead last week");
        let ranking_chart = figures[2]["text"].as_str().unwrap().to_owned();
        assert!(ranking_chart.contains("Shipping and delivery"), "{ranking_chart}");
        assert_eq!(b.eval("document.getElementById('week').textContent"), json!(week));
        let first = b.screenshot("dashboard.png");

        // The page's script: the previous-week link loads that week with the token it kept.
        b.eval("document.querySelector('a[data-week]').click(); true");
        let previous = feedback::time::IsoWeek::parse(&week).unwrap().before(1).to_string();
        b.wait_for(
            &format!("document.body.dataset.state === 'ready' && document.getElementById('week').textContent === '{previous}'"),
            Duration::from_secs(30),
        );
        assert!(b.eval("location.search").as_str().unwrap().contains(&previous));
        assert!(b.eval("location.hash === ''").as_bool().unwrap(), "the token left the address bar");
        let second = b.screenshot("dashboard-previous-week.png");
        while let Some(m) = b.read() {
            b.note(&m);
        }
        (b.problems.clone(), first, second)
    })
    .await;
    let (problems, first, second) = result.expect("browser session");
    println!("chromium: {chromium}; screenshots: {} and {}", first.display(), second.display());
    assert!(problems.is_empty(), "console errors: {problems:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_page_asks_to_sign_in_and_the_data_is_refused() {
    let sys = RunningSystem::start();
    let view = testkit::send("GET", &format!("{}/dashboard/view", sys.base_url), &[], "").await.unwrap();
    assert_eq!(view.status, 401);
    let wrong = testkit::send("GET", &format!("{}/stats", sys.base_url), &[("authorization", "Bearer guess")], "")
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    let base = sys.base_url.clone();
    let (text, problems) = tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch();
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = b.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }));
        b.session = attached["sessionId"].as_str().map(str::to_owned);
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.call(domain, json!({}));
        }
        b.call("Page.navigate", json!({ "url": format!("{base}/dashboard") }));
        b.wait_for("document.body && document.body.dataset.state === 'signed-out'", Duration::from_secs(20));
        let text = b.eval("document.getElementById('view').innerText");
        let problems = b.problems.clone();
        // The detector itself works: a console error in the page is caught.
        b.eval("console.error('canary'); true");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !b.problems.iter().any(|p| p.contains("canary")) && Instant::now() < deadline {
            if let Some(m) = b.read() {
                b.note(&m);
            }
        }
        assert!(b.problems.iter().any(|p| p.contains("canary")), "console errors are not being captured");
        (text, problems)
    })
    .await
    .unwrap();
    assert!(text.as_str().unwrap().contains("Sign in"), "{text}");
    assert!(problems.is_empty(), "{problems:#?}");
}
