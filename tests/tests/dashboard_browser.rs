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
                // The browser asks for English whatever the machine's locale (the tests that need
                // Chinese ask for it with the switch).
                "--lang=en-US",
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

    /// A browser with one blank tab attached, its console, log and page events on.
    fn tab() -> Browser {
        let mut b = Browser::launch();
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = b.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }));
        b.session = attached["sessionId"].as_str().map(str::to_owned);
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.call(domain, json!({}));
        }
        b
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
        let answer = self.answer(method, params);
        assert!(answer.get("error").is_none(), "{method}: {}", answer["error"]);
        answer["result"].clone()
    }

    /// The whole answer to a call: its `result`, or the protocol's `error`.
    fn answer(&mut self, method: &str, params: Value) -> Value {
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
                return m;
            }
            self.note(&m);
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true, reading events meanwhile. While the page is being
    /// replaced (a reload after the language switch) there is briefly no document, or no context,
    /// to evaluate in: a script exception or a protocol error then means "not yet", and the last
    /// one is told if the wait times out.
    fn wait_for(&mut self, expression: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        let evaluate = |expression: &str| json!({ "expression": expression, "returnByValue": true });
        loop {
            let answer = self.answer("Runtime.evaluate", evaluate(expression));
            let result = &answer["result"];
            if answer.get("error").is_none()
                && result.get("exceptionDetails").is_none()
                && result["result"]["value"] == json!(true)
            {
                return;
            }
            if Instant::now() >= deadline {
                let problem = answer.get("error").or_else(|| result.get("exceptionDetails")).cloned();
                let body = self.answer(
                    "Runtime.evaluate",
                    evaluate("document.body ? document.body.innerText.slice(0, 500) : '(no body)'"),
                );
                panic!(
                    "timed out waiting for {expression} (last problem: {}); body: {}",
                    problem.unwrap_or(Value::Null),
                    body["result"]["result"]["value"]
                );
            }
            while Instant::now() < deadline
                && let Some(m) = self.read()
            {
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
        let mut b = Browser::tab();
        b.call("Emulation.setDeviceMetricsOverride", json!({"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": false}));
        // In English first (the switch to the shop's Chinese comes below).
        b.call("Page.navigate", json!({ "url": format!("{base}/dashboard?week={week}&lang=en#token={}", infra::STAFF_DEV_TOKEN) }));
        b.wait_for("document.body && document.body.dataset.state === 'ready'", Duration::from_secs(30));
        assert_eq!(b.eval("document.documentElement.lang"), json!("en"));

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
        // The intents' scorecard: worst first; a header click sorts by that column, again the other way.
        let column = |n: usize| {
            format!("Array.from(document.querySelectorAll('#intent-scores tbody tr')).map(r => r.cells[{n}].getAttribute('data-value'))")
        };
        let intents: Vec<String> = serde_json::from_value(b.eval(&column(0))).unwrap();
        assert!(intents.len() >= 3, "the demo's intents: {intents:?}");
        // Sorted by conversations (a click on the header), most first, then (again) the other way.
        let mut sort_by_conversations = || {
            b.eval("document.querySelectorAll('#intent-scores th')[1].click(); true");
            let values: Vec<String> = serde_json::from_value(b.eval(&column(1))).unwrap();
            values.iter().map(|v| v.parse().unwrap()).collect::<Vec<f64>>()
        };
        let counts = sort_by_conversations();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "most first: {counts:?}");
        let counts = sort_by_conversations();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "then the other way: {counts:?}");
        assert_eq!(b.eval("document.querySelector('#experiments [data-experiment]').dataset.experiment"), json!("warm_apology"));
        // Staff correct an example's reading from the page: saved once, and the quality table of
        // the reloaded view counts it as reviewed and disagreed in the example's week.
        assert!(b.eval("document.querySelector('#quality .note') !== null").as_bool().unwrap(), "no corrections yet");
        b.eval(
            "var f = document.querySelector('#ranking form[data-ref]'); f.closest('details').open = true; \
             f.sentiment.value = 'positive'; f.querySelector('button').click(); true",
        );
        b.wait_for("document.querySelector('#ranking form[data-saved]') !== null", Duration::from_secs(30));
        let saved = b.eval("document.querySelector('#ranking form[data-saved] output').textContent");
        assert!(saved.as_str().unwrap().starts_with("Saved (version 1): now positive"), "{saved}");
        b.call("Page.reload", json!({}));
        b.wait_for("document.body && document.body.dataset.state === 'ready'", Duration::from_secs(30));
        let row = b.eval(&format!(
            "Array.from(document.querySelectorAll('#disagreement tr[data-week=\"{week}\"] td')).map(td => td.textContent)"
        ));
        assert_eq!(row, json!([week, "1", "1", "100.0%"]), "reviewed and disagreed once");
        // Accessibility basics: every chart has its numbers as a text alternative; every visible
        // text outside the charts contrasts at least 4.5:1 with its background; keyboard focus is
        // visible and a sortable header sorts from the keyboard.
        let labels = b.eval("Array.from(document.querySelectorAll('figure')).map(f => f.getAttribute('role') + '|' + (f.getAttribute('aria-label') || ''))");
        for label in labels.as_array().unwrap() {
            let label = label.as_str().unwrap();
            assert!(label.starts_with("img|") && label.chars().any(|c| c.is_ascii_digit()), "a chart without its numbers: {label}");
        }
        let contrast = b.eval(
            "(function () {\
               function lum(c) { var m = c.match(/[0-9.]+/g).map(Number); var a = m.slice(0, 3).map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2]; }\
               function bg(el) { while (el) { var c = getComputedStyle(el).backgroundColor; if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') { return c; } el = el.parentElement; } return 'rgb(255, 255, 255)'; }\
               var bad = [], n = 0;\
               document.querySelectorAll('body *').forEach(function (el) {\
                 if (el.closest('svg') || (el.checkVisibility && !el.checkVisibility())) { return; }\
                 var own = Array.prototype.some.call(el.childNodes, function (t) { return t.nodeType === 3 && t.textContent.trim(); });\
                 if (!own) { return; }\
                 n++; var s = getComputedStyle(el), a = lum(s.color), b = lum(bg(el));\
                 var r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);\
                 if (r < 4.5) { bad.push(el.tagName + '.' + el.className + ' ' + s.color + ' on ' + bg(el) + ' ' + r.toFixed(2)); }\
               });\
               return { n: n, bad: bad };\
             })()",
        );
        assert!(contrast["n"].as_u64().unwrap() > 50, "{contrast}");
        assert_eq!(contrast["bad"], json!([]), "text below 4.5:1");
        let focus = b.eval(
            "var th = document.querySelectorAll('#intent-scores th[data-sort]')[2]; th.focus(); \
             var outline = getComputedStyle(th).outlineStyle; \
             th.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })); \
             [document.activeElement === th, outline, th.getAttribute('aria-sort')]",
        );
        assert_eq!(focus, json!([true, "solid", "descending"]), "focus shows, Enter sorts");
        let first = b.screenshot("dashboard.png");
        // On a phone (390 px wide): nothing wider than the screen but the tables' own scrollers.
        b.call("Emulation.setDeviceMetricsOverride", json!({"width": 390, "height": 1800, "deviceScaleFactor": 2, "mobile": true}));
        let width = b.eval("document.documentElement.scrollWidth");
        assert!(width.as_f64().unwrap() <= 390.0, "the page is {width} px wide on a 390 px phone");
        let charts = b.eval("Array.from(document.querySelectorAll('figure svg')).map(s => Math.round(s.getBoundingClientRect().right))");
        assert!(charts.as_array().unwrap().iter().all(|r| r.as_f64().unwrap() <= 390.0), "charts fit: {charts}");
        b.screenshot("dashboard-390px.png");
        b.call("Emulation.setDeviceMetricsOverride", json!({"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": false}));

        // The switch to Chinese (the shop's language): the page is made again in it, remembered.
        b.eval("document.querySelector('a[data-lang=\"zh-CN\"]').click(); true");
        b.wait_for(
            "document.documentElement.lang === 'zh-CN' && document.body && document.body.dataset.state === 'ready'",
            Duration::from_secs(30),
        );
        assert_eq!(b.eval("localStorage.getItem('staffLang')"), json!("zh-CN"), "the choice is remembered");
        let ranking_zh = b.eval("document.querySelector('#issue-ranking svg').textContent");
        assert!(ranking_zh.as_str().unwrap().contains("物流配送"), "{ranking_zh}");
        // No staff text of ours left in English: every visible text but the customers' quotes, the
        // data (ids, marked translate=no) and the switch's own "English" is Chinese, figures or marks.
        let english = b.eval(
            "(function () {\
               var words = [];\
               document.querySelectorAll('details').forEach(function (d) { d.open = true; });\
               var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);\
               while (walker.nextNode()) {\
                 var t = walker.currentNode, el = t.parentElement;\
                 if (!el || el.closest('blockquote, script, style, [translate=no], [lang]:not(html)') || (el.checkVisibility && !el.checkVisibility())) { continue; }\
                 (t.textContent.match(/[A-Za-z]{3,}/g) || []).forEach(function (w) { if (['CSAT', 'CSV', 'VIP'].indexOf(w) < 0) { words.push(w + ' (' + el.tagName + ')'); } });\
               }\
               return words;\
             })()",
        );
        assert_eq!(english, json!([]), "untranslated staff text in the Chinese dashboard");
        // No tofu: the Chinese heading is drawn by a font that has its characters (Chromium says
        // which fonts drew how many glyphs); a staff computer has a CJK font, and `make browser`
        // installs Debian's fonts-noto-cjk as one.
        b.call("DOM.enable", json!({}));
        b.call("CSS.enable", json!({}));
        let root = b.call("DOM.getDocument", json!({}))["root"]["nodeId"].clone();
        let heading = b.call("DOM.querySelector", json!({ "nodeId": root, "selector": "section h2" }))["nodeId"].clone();
        let text = b.call("DOM.getOuterHTML", json!({ "nodeId": heading }));
        assert!(text["outerHTML"].as_str().unwrap_or("").contains("优先解决"), "{text}");
        let fonts = b.call("CSS.getPlatformFontsForNode", json!({ "nodeId": heading }))["fonts"].clone();
        let cjk = fonts.as_array().unwrap().iter().any(|f| {
            let name = f["familyName"].as_str().unwrap_or("");
            f["glyphCount"].as_u64().unwrap_or(0) >= 4
                && ["CJK", "SC", "Hei", "PingFang", "WenQuanYi", "Fallback", "Han"].iter().any(|k| name.contains(k))
        });
        assert!(cjk, "no CJK font drew the Chinese heading: {fonts}");
        b.screenshot("dashboard-zh-CN.png");
        b.call("Emulation.setDeviceMetricsOverride", json!({"width": 390, "height": 1800, "deviceScaleFactor": 2, "mobile": true}));
        let width = b.eval("document.documentElement.scrollWidth");
        assert!(width.as_f64().unwrap() <= 390.0, "the Chinese page is {width} px wide on a 390 px phone");
        b.screenshot("dashboard-zh-CN-390px.png");
        b.call("Emulation.setDeviceMetricsOverride", json!({"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": false}));

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
        // A refusal reads in the staff's language (the remembered Chinese), the API's detail after
        // it (the browser's own log of the expected 400 is not a problem of the page).
        b.call("Page.navigate", json!({ "url": format!("{base}/dashboard?week=last") }));
        b.wait_for("document.body && document.body.dataset.state === 'error'", Duration::from_secs(30));
        let error = b.eval("document.getElementById('view').textContent");
        assert_eq!(error, json!("请求有误。（\"last\" is not an ISO week like 2026-W47）"), "words, then the API's detail");
        while let Some(m) = b.read() {
            b.note(&m);
        }
        b.problems.retain(|p| !(p.contains("status of 400") && p.contains("week=last")));
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
        let mut b = Browser::tab();
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

/// A stand-in for the sign-in service (Cognito's hosted UI, or any OpenID Connect provider): it
/// answers `/oauth2/authorize` with a code for the challenge and `/oauth2/token` with the local
/// staff token only for the verifier that hashes to that challenge (PKCE, S256). What it checked
/// is returned for the test to assert.
fn fake_sign_in_service() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut challenge = String::new();
        for stream in listener.incoming().map_while(Result::ok) {
            let mut stream = stream;
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0u8; 16384];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let line = request.lines().next().unwrap_or_default().to_owned();
            let body = request.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
            let form = |text: &str, k: &str| {
                text.split('&').find_map(|p| {
                    p.split_once('=')
                        .filter(|(n, _)| *n == k)
                        .map(|(_, v)| infra::local::gateway::percent_decode(&v.replace('+', " ")))
                })
            };
            let answer = if line.starts_with("GET /oauth2/authorize?") {
                let query = line.split_whitespace().nth(1).unwrap().split_once('?').unwrap().1.to_owned();
                challenge = form(&query, "code_challenge").unwrap_or_default();
                let ok = form(&query, "response_type").as_deref() == Some("code")
                    && form(&query, "client_id").as_deref() == Some("local-client")
                    && form(&query, "code_challenge_method").as_deref() == Some("S256")
                    && challenge.len() == 43;
                log.lock().unwrap().push(format!("authorize ok={ok}"));
                let back = form(&query, "redirect_uri").unwrap_or_default();
                let state = form(&query, "state").unwrap_or_default();
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {back}?code=code-1&state={state}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            } else if line.starts_with("POST /oauth2/token") {
                let verifier = form(&body, "code_verifier").unwrap_or_default();
                let hashed =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                let ok = hashed == challenge
                    && form(&body, "code").as_deref() == Some("code-1")
                    && form(&body, "grant_type").as_deref() == Some("authorization_code");
                log.lock().unwrap().push(format!("token ok={ok}"));
                let json = if ok {
                    format!(
                        "{{\"access_token\":\"{}\",\"token_type\":\"Bearer\",\"expires_in\":3600}}",
                        infra::STAFF_DEV_TOKEN
                    )
                } else {
                    "{\"error\":\"invalid_grant\"}".to_owned()
                };
                let status = if ok { "200 OK" } else { "400 Bad Request" };
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, seen)
}

/// Staff sign in on the page itself with the stack's sign-in service (authorization code with
/// PKCE): the button goes to the service, the code comes back, the page exchanges it with its
/// verifier, keeps the token and shows the week asked for; the code leaves the address bar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_with_the_code_flow_and_pkce() {
    let (sign_in, seen) = fake_sign_in_service();
    let sys = RunningSystem::start_with(&[("STAFF_SIGN_IN_URL", &sign_in), ("STAFF_CLIENT_ID", "local-client")]);
    let base = sys.base_url.clone();
    let week = "2026-W40";
    let (search, problems) = tokio::task::spawn_blocking(move || {
        let mut b = Browser::tab();
        b.call("Page.navigate", json!({ "url": format!("{base}/dashboard?week={week}") }));
        b.wait_for("document.body && document.body.dataset.state === 'signed-out'", Duration::from_secs(20));
        b.eval("document.getElementById('sign-in').click(); true");
        b.wait_for(
            &format!("document.body && document.body.dataset.state === 'ready' && document.getElementById('week').textContent === '{week}'"),
            Duration::from_secs(30),
        );
        let search = b.eval("location.search");
        while let Some(m) = b.read() {
            b.note(&m);
        }
        (search, b.problems.clone())
    })
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["authorize ok=true", "token ok=true"]);
    assert_eq!(search, json!(format!("?week={week}")), "the code and state left the address bar");
    assert!(problems.is_empty(), "{problems:#?}");
}
