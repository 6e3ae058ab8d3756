//! The staff dashboard: query parameters, the CSV export, the page shell and the server-rendered
//! view (inline SVG charts, no scripts in it, nothing from a CDN).
//!
//! The page (`GET /dashboard`) is a static shell with no data in it, so it needs no credentials:
//! its one small script keeps the staff token (from the sign-in link's `#token=` fragment, which
//! never reaches a server or a log) in the tab's session storage and fetches the view
//! (`GET /dashboard/view`) with `Authorization: Bearer`, the way the API's JWT authorizer expects.

use feedback::i18n::{Catalogue, Locale};
use feedback::reporting::stats::{EXPORT_MAX_ROWS, FeedbackRow};
use feedback::time::IsoWeek;
use feedback::validate::FieldError;

use crate::problem::Problem;

fn bad(field: &str, rule: &'static str, detail: impl Into<String>) -> Problem {
    let mut p = Problem::new(400, "invalid-query", "Invalid query parameter", format!("Invalid parameter: {field}"));
    p.invalid_params = vec![FieldError::new(field, rule, detail)];
    p
}

/// `from` and `to` (`YYYY-MM-DD`, inclusive, the shop's days): by default the `default_days`
/// up to `today`; at most `max_days` long.
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
    today: jiff::civil::Date,
    default_days: i64,
    max_days: i64,
) -> Result<(jiff::civil::Date, jiff::civil::Date), Problem> {
    let parse = |field: &str, v: &str| {
        v.trim()
            .parse::<jiff::civil::Date>()
            .map_err(|_| bad(field, "date", format!("{v:?} is not a date like 2026-11-23")))
    };
    let to = match to {
        Some(v) => parse("to", v)?,
        None => today,
    };
    let from = match from {
        Some(v) => parse("from", v)?,
        None => to.checked_sub(jiff::Span::new().days(default_days - 1)).unwrap_or(to),
    };
    if from > to {
        return Err(bad("from", "order", format!("from ({from}) is after to ({to})")));
    }
    let days = i64::from(to.since(from).map(|s| s.get_days()).unwrap_or(0)) + 1;
    if days > max_days {
        return Err(bad("to", "range", format!("at most {max_days} days at a time; asked for {days}")));
    }
    Ok((from, to))
}

/// `GET /dashboard/view?week=`: the week, by default the current one.
pub fn view_week(week: Option<&str>, today: jiff::civil::Date) -> Result<String, Problem> {
    match week.map(str::trim).filter(|w| !w.is_empty()) {
        None => Ok(IsoWeek::of_date(today).to_string()),
        // As written canonically: `+2026-W47` is the week 2026-W47, read as such.
        Some(w) => IsoWeek::parse(w)
            .map(|week| week.to_string())
            .ok_or_else(|| bad("week", "iso-week", format!("{w:?} is not an ISO week like 2026-W47"))),
    }
}

/// One CSV cell: quoted when needed, and a leading `= + - @` neutralised so a spreadsheet never
/// runs a customer's comment as a formula.
fn cell(v: &str) -> String {
    // Formula starts, full-width ones too, and after leading blanks (spreadsheets skip them).
    const FORMULA: [char; 10] = ['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠'];
    let formula = v.starts_with(FORMULA) || v.trim_start_matches([' ', '\u{3000}']).starts_with(FORMULA);
    let v = if formula { format!("'{v}") } else { v.to_owned() };
    // Quoted when it holds a separator of any locale (`;` is Excel's in much of Europe), so a `;=`
    // inside a comment never starts a cell of its own.
    if v.contains([',', ';', '"', '\n', '\r', '\t']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
}

/// The export's columns, in order (their names in the reader's language are `csv.<column>`).
pub const CSV_COLUMNS: [&str; 11] = [
    "at",
    "kind",
    "conversation_id",
    "customer_id",
    "stars",
    "category",
    "sentiment",
    "score",
    "severity",
    "issue_types",
    "text",
];

/// The export: a header row in the reader's language, then one row per rating or trigger event
/// (UTF-8 with a BOM, so spreadsheet programs read the Chinese right). The values stay the API's
/// (ids, `negative`), so a sheet sorts and filters the same in any language.
pub fn feedback_csv(rows: &[FeedbackRow], truncated: bool, cat: &Catalogue) -> String {
    let header: Vec<String> = CSV_COLUMNS.iter().map(|c| cell(&cat.t(&format!("csv.{c}")))).collect();
    let mut out = format!("\u{feff}{}\r\n", header.join(","));
    for r in rows {
        let fields = [
            cell(&r.at),
            cell(&r.kind),
            cell(&r.conversation_id),
            cell(&r.customer_id),
            r.stars.map(|s| s.to_string()).unwrap_or_default(),
            cell(r.category.as_deref().unwrap_or("")),
            cell(r.sentiment.as_deref().unwrap_or("")),
            r.score.map(|s| format!("{s:.3}")).unwrap_or_default(),
            r.severity.map(|s| s.to_string()).unwrap_or_default(),
            cell(&r.issue_types.join(" ")),
            cell(r.text.as_deref().unwrap_or("")),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    if truncated {
        out.push_str(&format!("# {}\r\n", cat.f("csv.truncated", &[("rows", &EXPORT_MAX_ROWS)])));
    }
    out
}

/// The page's one script: keep the token, fetch the view with it, wire week links and downloads.
pub const SHELL_SCRIPT: &str = r#"(function () {
  var view = document.getElementById('view');
  var body = document.body;
  // The page's words in its language (the server's catalogue), and that language.
  var T = JSON.parse(body.getAttribute('data-t') || '{}');
  var lang = document.documentElement.lang || 'zh-CN';
  function withLang(query) { var p = new URLSearchParams(query); p.set('lang', lang); return '?' + p.toString(); }
  // A refusal in the staff's words (by its status), the API's own detail after it for whoever
  // looks into it.
  function refusal(status, problem) {
    var words = status === 403 ? T.forbidden : status === 404 ? T.not_found : status === 429 ? T.too_many
      : status >= 500 ? T.unavailable : status >= 400 ? T.bad_request : T.error;
    var first = problem && problem.invalid_params && problem.invalid_params[0];
    var detail = (first && first.detail) || (problem && (problem.detail || problem.title || problem.message)) || String(status);
    return T.refusal.replace('{words}', words).replace('{detail}', detail);
  }
  // The stack's staff sign-in (OpenID Connect, authorization code with PKCE), when configured:
  // the sign-in service's base URL and this page's public client id.
  var signIn = body.getAttribute('data-sign-in') || '';
  var client = body.getAttribute('data-client') || '';
  var here = location.origin + location.pathname;
  var base = location.pathname.replace(/\/$/, '');
  function show(state, html) { view.innerHTML = html; body.setAttribute('data-state', state); }
  function fail(message) { show('error', '<p class="note error"></p>'); view.firstChild.textContent = message; }
  function b64url(bytes) {
    return btoa(String.fromCharCode.apply(null, new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function random() { return b64url(crypto.getRandomValues(new Uint8Array(32))); }
  function startSignIn() {
    var verifier = random(), state = random();
    sessionStorage.setItem('pkceVerifier', verifier);
    sessionStorage.setItem('pkceState', state);
    sessionStorage.setItem('pkceReturn', location.search);
    crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)).then(function (digest) {
      location.assign(signIn + '/oauth2/authorize?' + new URLSearchParams({
        response_type: 'code', client_id: client, redirect_uri: here, scope: 'openid email profile',
        code_challenge: b64url(digest), code_challenge_method: 'S256', state: state
      }).toString());
    });
  }
  function signedOut(message) {
    sessionStorage.removeItem('staffToken');
    if (signIn && client) {
      show('signed-out', '<p class="note"><span></span> <button id="sign-in" type="button"></button></p>');
      view.querySelector('span').textContent = message || T.sign_in_needed;
      view.querySelector('button').textContent = T.sign_in;
      document.getElementById('sign-in').addEventListener('click', startSignIn);
    } else {
      show('signed-out', '<p class="note"></p>');
      view.firstChild.textContent = (message ? message + ' ' : '') + T.sign_in_link;
    }
  }
  function load(query) {
    var token = sessionStorage.getItem('staffToken');
    if (!token) { signedOut(); return; }
    body.setAttribute('data-state', 'loading');
    fetch(base + '/view' + withLang(query), { headers: { Authorization: 'Bearer ' + token } })
      .then(function (r) {
        if (r.status === 401) { signedOut(T.refused); return null; }
        if (!r.ok) { return r.json().catch(function () { return null; }).then(function (p) { throw new Error(refusal(r.status, p)); }); }
        return r.text();
      })
      .then(function (html) { if (html !== null) { show('ready', html); } })
      .catch(function (e) { fail(e.message); });
  }
  // Back from the sign-in service: exchange the code (once, for this tab's verifier) for a token.
  var params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) {
    var verifier = sessionStorage.getItem('pkceVerifier');
    var expected = sessionStorage.getItem('pkceState');
    var back = sessionStorage.getItem('pkceReturn') || '';
    ['pkceVerifier', 'pkceState', 'pkceReturn'].forEach(function (k) { sessionStorage.removeItem(k); });
    history.replaceState(null, '', location.pathname + back);
    if (params.has('error') || !verifier || params.get('state') !== expected) {
      signedOut(T.incomplete + ' (' + (params.get('error') || T.state_mismatch) + ')');
      return;
    }
    fetch(signIn + '/oauth2/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', client_id: client, code: params.get('code'),
        redirect_uri: here, code_verifier: verifier
      }).toString()
    })
      .then(function (r) { if (!r.ok) { throw new Error(T.code_refused + ' (' + r.status + ')'); } return r.json(); })
      .then(function (t) {
        if (!t.access_token) { throw new Error(T.no_token); }
        sessionStorage.setItem('staffToken', t.access_token);
        // The sign-in service returns to the page without the address's language: back to it.
        var wanted = new URLSearchParams(back).get('lang') || localStorage.getItem('staffLang');
        if (wanted && wanted !== lang) {
          var to = new URLSearchParams(back);
          to.set('lang', wanted);
          location.replace(location.pathname + '?' + to.toString());
          return;
        }
        load(back);
      })
      .catch(function (e) { signedOut(e.message); });
  } else {
    // The language staff chose with the switch wins over the browser's, unless the address
    // names one.
    var chosen = localStorage.getItem('staffLang');
    if (!params.has('lang') && chosen && chosen !== lang) {
      params.set('lang', chosen);
      location.replace(location.pathname + '?' + params.toString() + location.hash);
      return;
    }
    // Another issuer: a link that carries the token after '#' (never sent to the server).
    var m = location.hash.match(/token=([^&]+)/);
    if (m) {
      sessionStorage.setItem('staffToken', decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    load(location.search);
  }
  view.addEventListener('click', function (ev) {
    // A sortable table's header: sort its rows by that column (numbers by value, blanks last),
    // the other way on a second click.
    var th = ev.target.closest('th[data-sort]');
    if (th) {
      var table = th.closest('table'), column = Array.prototype.indexOf.call(th.parentNode.children, th);
      var down = th.getAttribute('aria-sort') !== 'descending';
      Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', down ? 'descending' : 'ascending');
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      var value = function (r) { var v = r.cells[column].getAttribute('data-value'); return v === null || v === '' ? null : v; };
      rows.sort(function (x, y) {
        var a = value(x), b = value(y);
        if (a === null || b === null) { return (a === null) - (b === null); }
        var na = parseFloat(a), nb = parseFloat(b);
        var c = (isNaN(na) || isNaN(nb)) ? a.localeCompare(b) : na - nb;
        return down ? -c : c;
      });
      rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
      return;
    }
    var a = ev.target.closest('a');
    if (!a) { return; }
    var token = sessionStorage.getItem('staffToken');
    if (a.hasAttribute('data-week')) {
      ev.preventDefault();
      var q = withLang('?week=' + a.getAttribute('data-week'));
      history.pushState(null, '', base + q);
      load(q);
    } else if (a.hasAttribute('data-download')) {
      ev.preventDefault();
      fetch(a.getAttribute('href'), { headers: { Authorization: 'Bearer ' + token } })
        .then(function (r) {
          if (r.status === 401) { throw new Error(T.expired); }
          if (!r.ok) { return r.json().catch(function () { return null; }).then(function (p) { throw new Error(T.export_failed + refusal(r.status, p)); }); }
          return r.blob();
        })
        .then(function (b) {
          var link = document.createElement('a');
          link.href = URL.createObjectURL(b);
          link.download = a.getAttribute('data-download');
          link.click();
          URL.revokeObjectURL(link.href);
        })
        .catch(function (e) { alert(e.message); });
    }
  });
  // A correction under an example: only what staff changed is sent; the answer says how the
  // item counts now, or what was wrong.
  view.addEventListener('submit', function (ev) {
    var form = ev.target.closest('form[data-ref]');
    if (!form) { return; }
    ev.preventDefault();
    var out = form.querySelector('output'), body = {};
    if (form.sentiment.value) { body.sentiment = form.sentiment.value; }
    if (form.triggered.value) { body.triggered = form.triggered.value === 'true'; }
    if (form.issue_type.value) { body.issue_types = [form.issue_type.value]; }
    if (form.invalid.checked) { body.invalid = true; }
    if (!Object.keys(body).length) { out.textContent = T.change_first; return; }
    var api = base.replace(/\/dashboard$/, '');
    fetch(api + '/feedback/' + encodeURIComponent(form.getAttribute('data-ref')) + '/correction', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + sessionStorage.getItem('staffToken'), 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, status: r.status, j: j }; }); })
      .then(function (a) {
        if (a.status === 401) { throw new Error(T.expired); }
        if (!a.ok) { throw new Error(T.not_saved + refusal(a.status, a.j)); }
        out.textContent = T.saved.replace('{version}', a.j.version).replace('{sentiment}', T[a.j.after.sentiment] || a.j.after.sentiment)
          + (a.j.after.counts ? '' : T.not_counted) + T.end;
        form.setAttribute('data-saved', a.j.version);
      })
      .catch(function (e) { out.textContent = e.message; });
  });
  // A sortable header sorts from the keyboard too (Enter or Space), as a click does.
  view.addEventListener('keydown', function (ev) {
    var th = ev.target.closest && ev.target.closest('th[data-sort]');
    if (th && (ev.key === 'Enter' || ev.key === ' ')) { ev.preventDefault(); th.click(); }
  });
  window.addEventListener('popstate', function () { load(location.search); });
  // The language switch: remembered in this browser, the page made again in that language.
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest && ev.target.closest('a[data-lang]');
    if (!a) { return; }
    ev.preventDefault();
    localStorage.setItem('staffLang', a.getAttribute('data-lang'));
    var p = new URLSearchParams(location.search);
    p.set('lang', a.getAttribute('data-lang'));
    location.assign(location.pathname + '?' + p.toString());
  });
})();"#;

const SHELL_STYLE: &str = "body{margin:0;font-family:-apple-system,'PingFang SC','Microsoft YaHei',Arial,sans-serif;background:#f3f4f6;color:#1f2937}\
header{background:#111827;color:#fff;padding:12px 20px;display:flex;align-items:baseline;gap:16px}\
header h1{font-size:18px;margin:0}header nav.lang{margin-left:auto;display:flex;gap:10px;font-size:14px}header nav.lang a{color:#bfdbfe}main{max-width:1200px;margin:0 auto;padding:16px;overflow-wrap:anywhere}\
.note{background:#fff;padding:16px;border-radius:8px}.error{color:#b91c1c}\
.nav{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin-bottom:12px}.nav a{color:#2563eb}\
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-bottom:16px}\
.tile{background:#fff;border-radius:8px;padding:12px;text-align:center}.tile b{display:block;font-size:24px}.tile span{font-size:12px;color:#6b7280}\
.estimated{margin:0 0 16px;color:#374151}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(520px,100%),1fr));gap:12px;margin-bottom:16px}\
figure{margin:0;background:#fff;border-radius:8px;padding:8px}figure svg{max-width:100%;height:auto;display:block}figcaption{font-size:12px;color:#6b7280}\
section{background:#fff;border-radius:8px;padding:12px 16px;margin-bottom:16px}section h2{font-size:16px;margin:4px 0 8px}\
ol.ranking li{margin-bottom:12px}.reasons{font-size:13px;color:#4b5563;margin:4px 0}.up,.new{color:#dc2626}.down{color:#15803d}.flat{color:#6b7280}\
blockquote{margin:4px 0 4px 8px;padding-left:8px;border-left:3px solid #e5e7eb;font-size:13px}\
table.scores{border-collapse:collapse;width:100%;font-size:13px}table.scores th,table.scores td{padding:4px 6px;border-bottom:1px solid #e5e7eb;text-align:right}\
table.scores th:first-child,table.scores td:first-child{text-align:left}table.scores th[data-sort]{cursor:pointer;color:#1d4ed8}\
.scroll{overflow-x:auto}a:focus,button:focus,summary:focus,select:focus,input:focus,th[data-sort]:focus{outline:3px solid #1d4ed8;outline-offset:2px}details.correct{margin:0 0 8px 16px;font-size:13px}details.correct form{display:flex;flex-wrap:wrap;gap:8px;align-items:center}\
details.correct output{color:#065f46}";

/// The staff sign-in service of the stack (OpenID Connect with PKCE): its base URL (an https
/// origin, e.g. Cognito's hosted UI `https://<prefix>.auth.<region>.amazoncognito.com`) and the
/// page's public client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSignIn {
    pub url: String,
    pub client_id: String,
}

impl StaffSignIn {
    /// From `STAFF_SIGN_IN_URL` and `STAFF_CLIENT_ID`; `None` when either is empty (staff then
    /// sign in with a `#token=` link from another issuer). An URL that is not a bare https origin
    /// (or http on the loopback, for the local runner) is refused.
    pub fn new(url: &str, client_id: &str) -> Result<Option<Self>, String> {
        let (url, client_id) = (url.trim().trim_end_matches('/'), client_id.trim());
        if url.is_empty() || client_id.is_empty() {
            return Ok(None);
        }
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://127.0.0.1:"))
            .or_else(|| url.strip_prefix("http://localhost:"))
            .ok_or_else(|| format!("{url:?} is not an https URL"))?;
        let host_ok =
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        let client_ok =
            client_id.len() <= 128 && client_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        match (host_ok, client_ok) {
            (true, true) => Ok(Some(StaffSignIn { url: url.to_owned(), client_id: client_id.to_owned() })),
            (false, _) => Err(format!("{url:?} must be an origin only (scheme and host)")),
            (_, false) => Err(format!("{client_id:?} is not a client id")),
        }
    }
}

/// The dashboard page in `locale`: no data in it, a script allowed by its hash only, and the
/// sign-in service (when there is one) the only other place it may talk to. The script's words
/// come from the catalogue (`shell.*`, in `data-t`), so one script serves every language.
pub fn shell_page(shop_name: &str, sign_in: Option<&StaffSignIn>, locale: Locale) -> (String, String) {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let cat = locale.catalogue();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SHELL_SCRIPT.as_bytes()));
    let connect = sign_in.map(|s| format!("'self' {}", s.url)).unwrap_or_else(|| "'self'".to_owned());
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; connect-src {connect}; \
         img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    let words: serde_json::Map<String, serde_json::Value> = cat
        .keys()
        .filter_map(|k| k.strip_prefix("shell.").map(|short| (short.to_owned(), serde_json::Value::from(cat.t(k)))))
        .collect();
    let title = cat.t("view.title");
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang=(locale.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                link rel="icon" href="data:,";
                title { (title) " · " (shop_name) }
                style { (maud::PreEscaped(SHELL_STYLE)) }
            }
            body data-state="loading" data-sign-in=[sign_in.map(|s| &s.url)] data-client=[sign_in.map(|s| &s.client_id)] data-t=(serde_json::Value::Object(words).to_string()) {
                header {
                    h1 { (title) } span translate="no" { (shop_name) }
                    nav.lang aria-label=(cat.t("view.language")) {
                        @for other in Locale::ALL {
                            @if other == locale {
                                span lang=(other.tag()) aria-current="true" { (other.catalogue().t("view.language_name")) }
                            } @else {
                                a href={ "?lang=" (other.tag()) } hreflang=(other.tag()) lang=(other.tag()) data-lang=(other.tag()) { (other.catalogue().t("view.language_name")) }
                            }
                        }
                    }
                }
                main id="view" { p.note { (cat.t("view.loading")) } }
                script { (maud::PreEscaped(SHELL_SCRIPT)) }
            }
        }
    }
    .into_string();
    (page, csp)
}

/// The language of a dashboard request: `?lang=` if it names one of ours, else the browser's
/// `Accept-Language`, else the shop's.
pub fn request_locale(query_lang: Option<&str>, accept_language: Option<&str>, shop: Locale) -> Locale {
    query_lang
        .and_then(Locale::parse)
        .or_else(|| accept_language.and_then(Locale::from_accept_language))
        .unwrap_or(shop)
}

#[cfg(feature = "charts")]
pub use view::{ViewError, render_view, week_view};

#[cfg(feature = "charts")]
mod view {
    use crate::charts::{Chart, ChartError};
    use feedback::errors::StoreError;
    use feedback::i18n::Catalogue;
    use feedback::insights::scorecards::NotCompared;
    use feedback::insights::weekly::{Headline, Trend, WeeklyReport, build_report, build_report_so_far};
    use feedback::reporting::ReportStore;
    use feedback::reporting::stats::TREND_WEEKS;
    use feedback::time::IsoWeek;
    use maud::{PreEscaped, html};

    #[derive(Debug, thiserror::Error)]
    pub enum ViewError {
        #[error(transparent)]
        Store(#[from] StoreError),
        #[error(transparent)]
        Chart(#[from] ChartError),
    }

    /// `GET /dashboard/view`: the week's report computed live from its aggregates and the week
    /// before (so the week in progress shows too), with 12 weeks of headlines for the trend.
    pub async fn week_view(
        store: &impl ReportStore,
        week: &str,
        today: jiff::civil::Date,
        now: feedback::Timestamp,
        surveys: &[feedback::followups::survey::SurveyReport],
        cat: &Catalogue,
    ) -> Result<String, ViewError> {
        let parsed = IsoWeek::parse(week);
        let previous = parsed.map(|w| w.before(1).to_string()).unwrap_or_default();
        let settled =
            parsed.map(|w| w.before(feedback::insights::weekly::OFFERS_SETTLE_WEEKS).to_string()).unwrap_or_default();
        let intents = match parsed {
            Some(w) => {
                feedback::reporting::service::week_scorecard(store, w, feedback::insights::scorecards::ScoreBy::Intent)
                    .await?
                    .rows
            }
            None => Vec::new(),
        };
        let experiments = match parsed {
            Some(w) => {
                feedback::reporting::service::experiment_reports(
                    store,
                    feedback::experiments::Experiments::builtin(),
                    w,
                )
                .await?
            }
            None => Vec::new(),
        };
        let hurting = feedback::insights::scorecards::hurting_most(&intents, 3).into_iter().cloned().collect();
        // The week still running is not compared with a whole week.
        let build = if week == IsoWeek::of_date(today).to_string() { build_report_so_far } else { build_report };
        let report = build(&store.week_figures(week).await?, &store.week_figures(&previous).await?, now)
            .with_settled_offers(&store.week_figures(&settled).await?)
            .with_service(hurting, experiments);
        let trend_weeks: Vec<String> =
            parsed.into_iter().flat_map(|w| (0..TREND_WEEKS).rev().map(move |n| w.before(n).to_string())).collect();
        let trend = store.headlines(&trend_weeks).await?;
        Ok(render_view(&report, &trend, &IsoWeek::of_date(today).to_string(), &intents, surveys, cat)?)
    }

    /// A folded form under an example: staff say how it should have been read; the page's script
    /// posts what they changed to `POST /feedback/{ref}/correction`.
    fn correction_form(reference: &str, issue_type: &str, cat: &Catalogue) -> maud::Markup {
        let taxonomy = feedback::analysis::taxonomy::Taxonomy::builtin();
        let as_read = cat.t("correct.as_read");
        html! {
            details.correct {
                summary { (cat.t("correct.summary")) }
                form data-ref=(reference) {
                    label { (cat.t("correct.sentiment")) " " select name="sentiment" {
                        option value="" { (as_read) } option value="negative" { (cat.t("chart.negative")) }
                        option value="neutral" { (cat.t("chart.neutral")) } option value="positive" { (cat.t("chart.positive")) }
                    } }
                    label { (cat.t("correct.alert")) " " select name="triggered" {
                        option value="" { (as_read) } option value="true" { (cat.t("correct.yes")) } option value="false" { (cat.t("correct.no")) }
                    } }
                    label { (cat.t("correct.count_under")) " " select name="issue_type" {
                        option value="" { (as_read) }
                        @for id in taxonomy.ids().filter(|id| *id != issue_type) {
                            option value=(id) { (cat.f("correct.only", &[("issue", &taxonomy.get(id).map_or(id, |t| t.label(cat.locale.language())))])) }
                        }
                    } }
                    label { input type="checkbox" name="invalid" value="true"; " " (cat.t("correct.invalid")) }
                    button type="submit" { (cat.t("correct.save")) }
                    output {}
                }
            }
        }
    }

    fn opt(v: Option<f64>, unit: &str) -> String {
        v.map_or("–".to_owned(), |v| format!("{v:.1}{unit}"))
    }

    /// The view of one week in the reader's language: tiles, the four charts (inline SVG), the
    /// ranked issues with their reasons and example comments, and the export link.
    pub fn render_view(
        r: &WeeklyReport,
        trend: &[Headline],
        current_week: &str,
        intents: &[feedback::insights::scorecards::ScoreRow],
        surveys: &[feedback::followups::survey::SurveyReport],
        cat: &Catalogue,
    ) -> Result<String, ChartError> {
        let h = &r.headline;
        let step = |n: i64| IsoWeek::parse(&r.week).map(|w| w.before(n).to_string()).unwrap_or_default();
        let (previous, next) = (step(1), step(-1));
        let tiles = [
            (cat.t("tile.csat"), opt(h.csat_pct, "%")),
            (cat.t("tile.estimated"), opt(h.estimated.csat_pct, "%")),
            (cat.t("tile.rated_share"), opt(h.estimated.rated_share_pct, "%")),
            (cat.t("tile.average_stars"), h.average_stars.map_or("–".into(), |s| format!("{s:.2}"))),
            (cat.t("tile.ratings"), h.ratings.to_string()),
            (cat.t("tile.feedback"), h.feedback.to_string()),
            (cat.t("tile.negative"), h.negative.to_string()),
            (cat.t("tile.response"), opt(h.response_rate_pct, "%")),
        ];
        let charts = [
            ("csat-trend", Chart::csat_trend(trend, cat)),
            ("sentiment-split", Chart::sentiment(trend, cat)),
            ("issue-ranking", Chart::ranking(r, 8, cat)),
            ("follow-up-funnel", Chart::funnel(h, cat)),
        ];
        let mut figures = Vec::new();
        for (id, chart) in charts {
            // The SVG is our own drawing (its texts escaped by the chart code).
            figures.push((id, chart.svg(560, 280)?, chart.describe(), chart.title().to_owned()));
        }
        let language = cat.locale.language();
        // A choice by the survey's own label in the reader's language (the report keeps English).
        let choice_label = |survey: &str, question: &str, id: &str, en: &str| -> String {
            feedback::followups::survey::Surveys::builtin()
                .get(survey)
                .and_then(|s| s.questions.iter().find(|q| q.id == question))
                .and_then(|q| q.options.iter().find(|o| o.id == id))
                .map_or_else(|| en.to_owned(), |o| o.label(language).to_owned())
        };
        let markup = html! {
            div.nav {
                a href={ "?week=" (previous) } data-week=(previous) { "← " (previous) }
                strong #week { (r.week) }
                " "
                span { (cat.f("digest.period", &[("from", &r.from), ("to", &r.to)])) }
                @if r.week.as_str() < current_week {
                    a href={ "?week=" (next) } data-week=(next) { (next) " →" }
                } @else {
                    span { (cat.t("view.so_far")) }
                }
                a href={ "feedback.csv?from=" (r.from) "&to=" (r.to) "&lang=" (cat.locale.tag()) } data-download={ "feedback-" (r.week) ".csv" } style="margin-left:auto" { (cat.t("view.export")) }
            }
            div.tiles {
                @for (label, value) in &tiles {
                    div.tile { b { (value) } span { (label) } }
                }
            }
            @if let Some(estimated) = h.estimated.sentence(cat) {
                p.estimated { (estimated) }
            }
            div.charts {
                @for (id, svg, description, title) in &figures {
                    figure id=(id) role="img" aria-label=(description) {
                        (PreEscaped(svg))
                        figcaption { (title) }
                    }
                }
            }
            section {
                h2 { (cat.t("digest.fix_first")) }
                @if let Some(why) = &r.why_first {
                    p { strong { (why.render(cat)) } }
                }
                @if r.issues.is_empty() {
                    p #no-feedback {
                        @if r.empty { (cat.t("view.no_feedback_yet")) } @else { (cat.t("digest.no_problems")) }
                    }
                }
                ol.ranking #ranking {
                    @for i in &r.issues {
                        @let class = match i.trend {
                            Trend::Up { .. } => "up",
                            Trend::Down { .. } => "down",
                            Trend::New => "new",
                            Trend::Flat | Trend::Few | Trend::SoFar => "flat",
                        };
                        li data-issue-type=(i.issue_type) {
                            strong { (i.label(cat.locale.language())) }
                            " — " (cat.f("digest.issue_figures", &[
                                ("priority", &format!("{:.0}", i.priority)), ("items", &i.items), ("customers", &i.customers),
                            ])) " "
                            span class=(class) { (i.trend.arrow(cat)) }
                            ul.reasons { @for reason in &i.reasons { li { (reason.render(cat)) } } }
                            @for ex in &i.examples {
                                blockquote { (ex.text) }
                                @if let Some(reference) = &ex.reference {
                                    (correction_form(reference, &i.issue_type, cat))
                                }
                            }
                        }
                    }
                }
            }
            section #quality {
                h2 { (cat.t("view.quality")) }
                @let reviewed: Vec<&Headline> = trend.iter().filter(|h| h.reviewed > 0).collect();
                @if reviewed.is_empty() {
                    p.note { (cat.t("view.quality_none")) }
                } @else {
                    div.scroll { table.scores #disagreement {
                        caption { (cat.t("view.quality_caption")) }
                        thead { tr {
                            th scope="col" { (cat.t("view.week")) } th scope="col" { (cat.t("view.reviewed")) }
                            th scope="col" { (cat.t("view.disagreed")) } th scope="col" { (cat.t("view.disagreement")) }
                        } }
                        tbody { @for h in &reviewed { tr data-week=(h.week) {
                            td { (h.week) } td { (h.reviewed) } td { (h.disagreed) } td { (opt(h.disagreed_pct, "%")) }
                        } } }
                    } }
                }
            }
            @if !r.changes.is_empty() {
                section {
                    h2 { (cat.t("digest.changes")) }
                    ul { @for c in &r.changes { li { (c.render(cat)) } } }
                }
            }
            @let proactive = r.proactive_lines(cat);
            @if !proactive.is_empty() {
                section #offers {
                    h2 { (cat.t("digest.proactive")) }
                    ul { @for line in &proactive { li { (line) } } }
                }
            }
            @if !intents.is_empty() {
                section #scorecard {
                    h2 { (cat.t("view.scorecard")) }
                    div.scroll {
                        table.scores #intent-scores {
                            thead { tr {
                                th data-sort="text" scope="col" tabindex="0" { (cat.t("view.intent")) }
                                @for key in ["view.conversations", "view.satisfaction", "view.csat_rated", "view.resolved", "view.escalated", "view.want_human", "view.change", "view.shortfall"] {
                                    th data-sort="number" scope="col" tabindex="0" { (cat.t(key)) }
                                }
                            } }
                            tbody {
                                @for row in intents {
                                    @let pct = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
                                    tr data-intent=(row.key) {
                                        td data-value=(row.key) translate="no" { (row.key) }
                                        td data-value=(row.conversations) { (row.conversations) }
                                        td data-value=(pct(row.estimated_csat_pct)) { (opt(row.estimated_csat_pct, "%")) }
                                        td data-value=(pct(row.csat_pct)) { (opt(row.csat_pct, "%")) " (" (row.ratings) ")" }
                                        td data-value=(pct(row.resolution_pct)) { (opt(row.resolution_pct, "%")) }
                                        td data-value=(pct(row.escalation_pct)) { (opt(row.escalation_pct, "%")) }
                                        td data-value=(pct(row.want_human_pct)) { (opt(row.want_human_pct, "%")) }
                                        // A row with a reason has no change (`scorecard` leaves it out).
                                        @let (short, why) = match row.not_compared {
                                            Some(NotCompared::EstimateModel) => (cat.t("view.new_model"), Some(cat.t("view.model_changed"))),
                                            Some(NotCompared::Measure) => (cat.t("view.other_measure"), Some(cat.t("view.measure_changed"))),
                                            None => ("–".to_owned(), None),
                                        };
                                        td data-value=(pct(row.change_pts)) title=[why] {
                                            (match row.change_pts {
                                                Some(c) => cat.f("weekly.pts", &[("pts", &format!("{c:+.1}"))]),
                                                None => short,
                                            })
                                        }
                                        td data-value=(format!("{:.1}", row.shortfall)) { (format!("{:.1}", row.shortfall)) }
                                    }
                                }
                            }
                        }
                    }
                    @for row in r.intents_hurting.iter() {
                        @if !row.examples.is_empty() {
                            p { strong translate="no" { (row.key) } (cat.t("view.what_customers_said")) }
                            @for ex in &row.examples { blockquote { (ex) } }
                        }
                    }
                }
            }
            @if surveys.iter().any(|s| s.invited > 0) {
                section #panel {
                    h2 { (cat.t("view.panel")) }
                    @for s in surveys {
                        div data-survey=(s.id) {
                            p { strong { (s.title(language)) } " — "
                                (cat.f("view.panel_answered", &[("answered", &s.answered), ("invited", &s.invited)]))
                                @if let Some(rate) = s.response_rate_pct { (cat.f("view.rate", &[("rate", &format!("{rate:.1}%"))])) } }
                            ul {
                                @for q in &s.questions {
                                    li {
                                        (q.prompt(language))
                                        " — " (cat.f("view.answers", &[("n", &q.answered)]))
                                        @if let Some(avg) = q.average_stars { (cat.f("view.average_stars", &[("stars", &format!("{avg:.2}"))])) }
                                        @for (id, label, n) in &q.choices { (cat.t("list.comma")) (choice_label(&s.id, &q.id, id, label)) " " (n) }
                                        @if let Some([neg, neu, pos]) = q.sentiment {
                                            (cat.f("view.sentiment_split", &[("negative", &neg), ("neutral", &neu), ("positive", &pos)]))
                                        }
                                        @for ex in &q.examples { blockquote { (ex) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !r.experiments.is_empty() {
                section #experiments {
                    h2 { (cat.t("view.experiments")) }
                    @for x in &r.experiments {
                        div data-experiment=(x.name) {
                            p { strong translate="no" { (x.name) } " — " (x.description_in(cat.locale)) (cat.t("view.sentence_end")) " " span.verdict { (x.verdict_text(cat)) } }
                            div.scroll { table.scores {
                                thead { tr {
                                    @for key in ["view.arm", "view.conversations", "view.satisfaction", "view.resolved", "view.escalated", "view.csat_rated"] {
                                        th scope="col" { (cat.t(key)) }
                                    }
                                } }
                                tbody { @for a in &x.arms { tr {
                                    td translate="no" { (a.arm) } td { (a.conversations) } td { (opt(a.estimated_csat_pct, "%")) }
                                    td { (opt(a.resolution_pct, "%")) } td { (opt(a.escalation_pct, "%")) }
                                    td { (opt(a.csat_pct, "%")) " (" (a.ratings) ")" }
                                } } }
                            } }
                        }
                    }
                }
            }
        };
        Ok(markup.into_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2,000 cases per run, or `PROPTEST_CASES` when set (the closing note's runs used 20,000).
    fn fuzz_cases() -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

        /// Query ranges from the address bar: any text is a range within the limits or a 400.
        #[test]
        fn query_ranges(from in prop::option::of(".{0,24}|[0-9]{4}-[0-9]{2}-[0-9]{2}"), to in prop::option::of(".{0,24}|[0-9]{4}-[0-9]{2}-[0-9]{2}"), week in prop::option::of(".{0,12}|[0-9]{4}-W[0-9]{2}")) {
            let today = jiff::civil::date(2026, 11, 25);
            match date_range(from.as_deref(), to.as_deref(), today, 56, 371) {
                Ok((a, b)) => prop_assert!(a <= b && b.since(a).unwrap().get_days() < 371),
                Err(p) => prop_assert!(p.status == 400 && !p.invalid_params.is_empty()),
            }
            match view_week(week.as_deref(), today) {
                Ok(w) => prop_assert!(feedback::time::IsoWeek::parse(&w).is_some()),
                Err(p) => prop_assert_eq!(p.status, 400),
            }
        }
    }

    fn d(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    #[cfg(feature = "charts")]
    #[test]
    fn a_week_estimated_by_a_new_model_says_so_instead_of_showing_a_change() {
        use feedback::insights::scorecards::{ScoreCounts, scorecard};
        use feedback::insights::weekly::{Counts, WeekFigures, build_report};
        let estimated = |milli: u64, model: &str| {
            let mut c = ScoreCounts {
                conversations: 10,
                estimated: 10,
                estimated_satisfied_milli: milli,
                estimated_with_model: 10,
                ..Default::default()
            };
            c.estimate_models.insert(model.to_owned());
            c
        };
        let rated = ScoreCounts { conversations: 10, ratings: 4, satisfied: 2, ..Default::default() };
        let rows = scorecard(
            &[
                ("refund".to_owned(), estimated(7_000, "s-b")),
                ("track_order".to_owned(), estimated(6_000, "s-a")),
                ("cancel".to_owned(), estimated(6_000, "s-a")),
            ],
            &[
                ("refund".to_owned(), estimated(5_000, "s-a")),
                ("track_order".to_owned(), estimated(5_000, "s-a")),
                ("cancel".to_owned(), rated),
            ],
        );
        let figures = |week: &str, model: &str| WeekFigures {
            week: week.into(),
            all: Counts {
                estimated: 20,
                estimated_satisfied_milli: 13_000,
                estimate_models: [model.to_owned()].into(),
                estimated_with_model: 20,
                ..Default::default()
            },
            ..Default::default()
        };
        let report = build_report(
            &figures("2026-W47", "s-b"),
            &figures("2026-W46", "s-a"),
            "2026-11-23T01:00:00Z".parse().unwrap(),
        );
        let en = Catalogue::of(feedback::i18n::Locale::En);
        let html = render_view(&report, &[], "2026-W48", &rows, &[], en).unwrap();
        // The change cell's text: the eighth cell of the intent's row.
        let change = |intent: &str| {
            let at = html.find(&format!("data-intent=\"{intent}\"")).unwrap();
            let row = &html[at..at + html[at..].find("</tr>").unwrap()];
            let cell = row.split("</td>").nth(7).unwrap();
            cell[cell.rfind('>').unwrap() + 1..].trim().to_owned()
        };
        assert_eq!(change("refund"), "new model");
        assert_eq!(change("track_order"), "+10.0 pts");
        assert_eq!(change("cancel"), "estimate vs ratings", "last week only rated: no estimate to compare with");
        assert!(html.contains("not comparable"), "the week's changes say why");
    }

    #[test]
    fn ranges_default_and_refuse_what_is_wrong() {
        let today = d("2026-11-25");
        assert_eq!(date_range(None, None, today, 56, 371).unwrap(), (d("2026-10-01"), today));
        assert_eq!(
            date_range(Some("2026-11-01"), Some("2026-11-07"), today, 56, 31).unwrap(),
            (d("2026-11-01"), d("2026-11-07"))
        );
        let p = date_range(Some("yesterday"), None, today, 56, 371).unwrap_err();
        assert_eq!((p.status, p.invalid_params[0].field.as_str()), (400, "from"));
        let p = date_range(Some("2026-11-08"), Some("2026-11-01"), today, 56, 371).unwrap_err();
        assert_eq!(p.invalid_params[0].rule, "order");
        let p = date_range(Some("2026-01-01"), Some("2026-11-01"), today, 56, 31).unwrap_err();
        assert_eq!(p.invalid_params[0].rule, "range");
        assert!(date_range(Some("2026-11-01"), Some("2026-12-01"), today, 56, 31).is_ok(), "31 days is allowed");
        assert!(date_range(Some("2026-11-01"), Some("2026-12-02"), today, 56, 31).is_err(), "32 is not");
    }

    #[test]
    fn the_view_week_defaults_to_this_week_and_refuses_what_is_not_one() {
        assert_eq!(view_week(None, d("2026-11-25")).unwrap(), "2026-W48");
        assert_eq!(view_week(Some("2026-W47"), d("2026-11-25")).unwrap(), "2026-W47");
        assert_eq!(view_week(Some("47"), d("2026-11-25")).unwrap_err().status, 400);
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let row = FeedbackRow {
            at: "2026-11-18T03:00:00.000Z".into(),
            kind: "rating".into(),
            conversation_id: "c-1".into(),
            customer_id: "u-1".into(),
            stars: Some(1),
            category: None,
            text: Some("=HYPERLINK(\"http://x\"), 太慢".into()),
            sentiment: Some("negative".into()),
            score: Some(-0.8123),
            severity: Some(4),
            issue_types: vec!["logistics".into(), "service".into()],
        };
        let csv = feedback_csv(std::slice::from_ref(&row), true, Catalogue::of(Locale::En));
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(lines[0].starts_with("\u{feff}at,kind,"));
        let zh = feedback_csv(&[row], false, Catalogue::of(Locale::ZhCn));
        assert!(zh.starts_with("\u{feff}时间,类型,会话编号,"), "the header in the shop's language: {zh}");
        assert!(zh.contains(",negative,"), "values stay the API's, whatever the header's language");
        assert_eq!(
            lines[1],
            "2026-11-18T03:00:00.000Z,rating,c-1,u-1,1,,negative,-0.812,4,logistics service,\"'=HYPERLINK(\"\"http://x\"\"), 太慢\""
        );
        assert!(lines[2].starts_with("# truncated"));
        for (comment, expected) in [
            ("ok;=cmd|' /C calc'!A0", "\"ok;=cmd|' /C calc'!A0\""),
            ("＝1+1", "'＝1+1"),
            ("  =1+1", "'  =1+1"),
            ("－2", "'－2"),
        ] {
            assert_eq!(cell(comment), expected, "{comment}");
        }
    }

    #[test]
    fn the_shell_has_no_data_and_allows_only_its_own_script() {
        let (page, csp) = shell_page("<小店>", None, Locale::ZhCn);
        assert!(page.contains("&lt;小店&gt;") && page.contains("id=\"view\""));
        assert!(
            page.contains("<html lang=\"zh-CN\">") && page.contains("反馈看板") && page.contains("data-lang=\"en\"")
        );
        let (en, en_csp) = shell_page("<小店>", None, Locale::En);
        assert!(
            en.contains("<html lang=\"en\">")
                && en.contains("Feedback dashboard")
                && en.contains("data-lang=\"zh-CN\"")
        );
        assert_eq!(csp, en_csp, "one script for every language: its words are data");
        assert!(csp.contains("script-src 'sha256-") && csp.contains("default-src 'none'"));
        assert!(csp.contains("connect-src 'self';"));
        assert!(!page.contains(" data-sign-in="));
        let sign_in = StaffSignIn::new("https://shop-staff.auth.ap-east-1.amazoncognito.com/", "abc123").unwrap();
        let (page, csp) = shell_page("小店", sign_in.as_ref(), Locale::En);
        assert!(
            page.contains(
                " data-sign-in=\"https://shop-staff.auth.ap-east-1.amazoncognito.com\" data-client=\"abc123\""
            )
        );
        assert!(csp.contains("connect-src 'self' https://shop-staff.auth.ap-east-1.amazoncognito.com;"), "{csp}");
    }

    #[test]
    fn a_sign_in_service_is_an_origin_and_a_client_id_or_nothing() {
        assert_eq!(StaffSignIn::new("", "abc"), Ok(None));
        assert_eq!(StaffSignIn::new("https://x.example.com", " "), Ok(None));
        assert!(StaffSignIn::new("http://127.0.0.1:4100", "local").unwrap().is_some());
        for bad in [
            "http://x.example.com",
            "https://x.example.com/path",
            "https://x.example.com\" onload=\"",
            "javascript:alert(1)",
        ] {
            assert!(StaffSignIn::new(bad, "abc").is_err(), "{bad}");
        }
        assert!(StaffSignIn::new("https://x.example.com", "a b").is_err());
    }

    #[test]
    fn the_request_language_is_the_address_then_the_browser_then_the_shop() {
        assert_eq!(request_locale(Some("en"), Some("zh-CN"), Locale::ZhCn), Locale::En);
        assert_eq!(request_locale(Some("fr"), Some("en-US,en;q=0.9"), Locale::ZhCn), Locale::En);
        assert_eq!(request_locale(None, Some("de-DE"), Locale::En), Locale::En);
        assert_eq!(request_locale(None, None, Locale::ZhCn), Locale::ZhCn);
    }

    #[test]
    fn every_csv_column_is_named_in_each_language() {
        for locale in Locale::ALL {
            for c in CSV_COLUMNS {
                assert!(locale.catalogue().get(&format!("csv.{c}")).is_some(), "csv.{c} in {}", locale.tag());
            }
            // Every word the page's script takes (`T.name`, `T[...]` for the sentiments) is there.
            let mut words: Vec<&str> = SHELL_SCRIPT
                .split("T.")
                .skip(1)
                .map(|rest| rest.split(|c: char| !(c.is_ascii_lowercase() || c == '_')).next().unwrap_or(""))
                .filter(|w| !w.is_empty())
                .collect();
            words.extend(["negative", "neutral", "positive"]);
            assert!(words.len() > 20, "{words:?}");
            for word in words {
                assert!(
                    locale.catalogue().get(&format!("shell.{word}")).is_some(),
                    "the script's {word} in {}",
                    locale.tag()
                );
            }
        }
    }
}
