//! The dashboard handler, given real API Gateway (HTTP API, payload 2.0) events with the JWT
//! authorizer's claims, against moto with feedback counted by the real analysis store.

use dashboard::App;
use feedback::config::WeekSettings;
use feedback::reporting::ReportStore;
use feedback_aws::dynamo::DynamoReportStore;
use serde_json::{Value, json};
use testkit::{api_event, fresh_feedback_table, seed_rating};

/// A request as API Gateway passes it on: `staff` adds the JWT authorizer's claims.
fn event(route_key: &str, path: &str, params: &[(&str, &str)], query: &[(&str, &str)], staff: bool) -> String {
    let mut e: Value = serde_json::from_str(&api_event(route_key, path, params, "", &[])).unwrap();
    e["body"] = Value::Null;
    e["requestContext"]["authorizer"] =
        if staff { json!({"jwt": {"claims": {"sub": "staff-7"}, "scopes": null}}) } else { Value::Null };
    e["rawQueryString"] = json!(query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
    e["queryStringParameters"] = Value::Object(query.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect());
    e.to_string()
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
    headers: lambda_http::http::HeaderMap,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn get(
    app: &App,
    route_key: &str,
    path: &str,
    params: &[(&str, &str)],
    query: &[(&str, &str)],
    staff: bool,
) -> Answer {
    let req = lambda_http::request::from_str(&event(route_key, path, params, query, staff)).unwrap();
    let res = app.handle(req).await.unwrap();
    Answer {
        status: res.status().as_u16(),
        content_type: res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default(),
        headers: res.headers().clone(),
        body: String::from_utf8_lossy(res.body().as_ref()).into_owned(),
    }
}

async fn seeded() -> (App, DynamoReportStore) {
    let (client, table) = fresh_feedback_table().await;
    for (i, text) in
        ["快递一个星期都没到，电话 13812345678", "物流太慢了，等了十天", "发货太慢，客服也不回复"].iter().enumerate()
    {
        let customer = format!("u-{i}");
        seed_rating(&client, &table, &customer, 1, Some(text), &[], Some(12_000), "2026-11-18T03:00:00Z", false).await;
    }
    seed_rating(
        &client,
        &table,
        "u-8",
        2,
        Some("=cmd|' /C calc'!A0 质量太差"),
        &["quality"],
        None,
        "2026-11-19T03:00:00Z",
        false,
    )
    .await;
    seed_rating(&client, &table, "u-9", 5, Some("很满意"), &[], None, "2026-11-20T03:00:00Z", false).await;
    seed_rating(&client, &table, "u-10", 4, None, &[], None, "2026-11-10T03:00:00Z", false).await;
    let app = App::new(client.clone(), &table, WeekSettings::default(), "小店".into());
    (app, DynamoReportStore::new(client, &table, WeekSettings::default()))
}

#[tokio::test]
async fn the_page_needs_no_token_and_carries_no_data_and_a_strict_policy() {
    let (app, _) = seeded().await;
    let page = get(&app, "GET /dashboard", "/dashboard", &[], &[], false).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!page.body.contains("快递"), "no feedback in the page itself");
}

#[tokio::test]
async fn the_week_view_ranks_issues_with_charts_and_masked_examples() {
    let (app, _) = seeded().await;
    let denied = get(&app, "GET /dashboard/view", "/dashboard/view", &[], &[("week", "2026-W47")], false).await;
    assert_eq!(denied.status, 401, "no claims, no data: {}", denied.body);
    let view = get(&app, "GET /dashboard/view", "/dashboard/view", &[], &[("week", "2026-W47")], true).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body.matches("<svg").count(), 4, "CSAT trend, sentiment, ranking, funnel");
    for id in ["csat-trend", "sentiment-split", "issue-ranking", "follow-up-funnel"] {
        assert!(view.body.contains(&format!("<figure id=\"{id}\"")), "{id}");
    }
    let first = view.body.find("data-issue-type=\"logistics\"").expect("logistics ranked");
    let quality = view.body.find("data-issue-type=\"quality\"").expect("quality ranked");
    assert!(first < quality, "logistics first");
    assert!(view.body.contains("电话 [phone]") && !view.body.contains("13812345678"), "phone masked");
    // The shop's language unless the address (or the browser) names another.
    assert!(view.body.contains("2026-11-16 至 2026-11-22") && view.body.contains("优先解决"), "zh-CN by default");
    assert_eq!(view.headers["content-language"], "zh-CN");
    let en =
        get(&app, "GET /dashboard/view", "/dashboard/view", &[], &[("week", "2026-W47"), ("lang", "en")], true).await;
    assert!(en.body.contains("2026-11-16 to 2026-11-22") && en.body.contains("Fix first"), "{}", en.body);
    assert!(!en.body.contains("优先解决"), "no Chinese of ours in the English view");
    let bad = get(&app, "GET /dashboard/view", "/dashboard/view", &[], &[("week", "last")], true).await;
    assert_eq!((bad.status, bad.json()["invalid_params"][0]["field"].as_str()), (400, Some("week")));
}

#[tokio::test]
async fn stats_reports_and_the_export_answer_json_and_csv() {
    let (app, store) = seeded().await;
    let stats = get(&app, "GET /stats", "/stats", &[], &[("from", "2026-11-09"), ("to", "2026-11-22")], true).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let s = stats.json();
    assert_eq!(s["weeks"].as_array().unwrap().len(), 2);
    assert_eq!((s["weeks"][0]["week"].as_str(), s["weeks"][0]["ratings"].as_u64()), (Some("2026-W46"), Some(1)));
    assert_eq!((s["weeks"][1]["ratings"].as_u64(), s["ratings"].as_u64()), (Some(5), Some(6)));
    // 4–5★: one in each week → 2 of 6.
    assert_eq!(s["csat_pct"], 33.3);

    let missing = get(&app, "GET /reports/{week}", "/reports/2026-W47", &[("week", "2026-W47")], &[], true).await;
    assert_eq!((missing.status, missing.json()["type"].as_str()), (404, Some("urn:feedback-loop:problem:no-report")));
    let figures = store.week_figures("2026-W47").await.unwrap();
    let before = store.week_figures("2026-W46").await.unwrap();
    store
        .save_report(&feedback::insights::weekly::build_report(
            &figures,
            &before,
            "2026-11-23T01:00:00Z".parse().unwrap(),
        ))
        .await
        .unwrap();
    let report = get(&app, "GET /reports/{week}", "/reports/2026-W47", &[("week", "2026-W47")], &[], true).await;
    assert_eq!(report.status, 200);
    assert_eq!(report.json()["issues"][0]["issue_type"], "logistics");
    // Its sentences carry their text in the reader's language (the shop's, zh-CN, unless asked).
    let why = report.json()["why_first"]["text"].as_str().unwrap_or_default().to_owned();
    assert!(why.starts_with("物流配送排在第一"), "{}", report.body);
    let en =
        get(&app, "GET /reports/{week}", "/reports/2026-W47", &[("week", "2026-W47")], &[("lang", "en")], true).await;
    assert!(en.json()["why_first"]["text"].as_str().unwrap_or_default().starts_with("Shipping and delivery is first"));
    let bad = get(&app, "GET /reports/{week}", "/reports/W47", &[("week", "W47")], &[], true).await;
    assert_eq!(bad.status, 400);
    // A week that ends like another route is a week, and not one.
    for name in ["stats", "feedback.csv", "dashboard", "view"] {
        let odd = get(&app, "GET /reports/{week}", &format!("/reports/{name}"), &[("week", name)], &[], true).await;
        assert_eq!((odd.status, odd.json()["type"].as_str()), (400, Some("urn:feedback-loop:problem:invalid-week")));
    }
    // A week written another way is the same week, found.
    let signed = get(&app, "GET /reports/{week}", "/reports/+2026-W47", &[("week", "+2026-W47")], &[], true).await;
    assert_eq!((signed.status, signed.json()["week"].as_str()), (200, Some("2026-W47")), "{}", signed.body);

    let csv =
        get(&app, "GET /feedback.csv", "/feedback.csv", &[], &[("from", "2026-11-16"), ("to", "2026-11-22")], true)
            .await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(csv.content_type.starts_with("text/csv"));
    assert!(csv.headers["content-disposition"].to_str().unwrap().contains("feedback-2026-11-16-2026-11-22.csv"));
    let lines: Vec<&str> = csv.body.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 6, "a header and five ratings: {lines:?}");
    assert!(csv.body.contains("电话 [phone]") && !csv.body.contains("13812345678"));
    assert!(csv.body.contains(",'=cmd|"), "a formula is neutralised: {}", csv.body);
    assert!(lines.iter().any(|l| l.contains(",negative,") && l.contains("logistics")), "{lines:?}");
    for (query, field) in [
        (&[("from", "2026-11-22"), ("to", "2026-11-16")][..], "from"),
        (&[("from", "2026-01-01"), ("to", "2026-11-16")][..], "to"),
        (&[("from", "16/11/2026")][..], "from"),
    ] {
        let bad = get(&app, "GET /feedback.csv", "/feedback.csv", &[], query, true).await;
        assert_eq!((bad.status, bad.json()["invalid_params"][0]["field"].as_str()), (400, Some(field)), "{query:?}");
    }
}

/// A token the issuer signed is not enough when the stack names a staff group: the token must carry
/// it (Cognito's `cognito:groups`, a `groups` claim, or the scope).
#[tokio::test]
async fn only_tokens_of_the_staff_group_read_the_data() {
    let (client, table) = fresh_feedback_table().await;
    let app = App::new(client, &table, WeekSettings::default(), "小店".into()).with_staff_group("feedback-staff");
    let ask = |claims: Value| {
        let mut e: Value = serde_json::from_str(&event("GET /stats", "/stats", &[], &[], true)).unwrap();
        e["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        let req = lambda_http::request::from_str(&e.to_string()).unwrap();
        let app = &app;
        async move {
            let res = app.handle(req).await.unwrap();
            (res.status().as_u16(), String::from_utf8_lossy(res.body().as_ref()).into_owned())
        }
    };
    let (status, body) = ask(json!({"sub": "someone"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not-staff"), "{body}");
    assert_eq!(ask(json!({"sub": "a", "cognito:groups": "[shoppers]"})).await.0, 403);
    assert_eq!(ask(json!({"sub": "a", "cognito:groups": "[admins feedback-staff]"})).await.0, 200);
    assert_eq!(ask(json!({"sub": "a", "scope": "openid feedback-staff"})).await.0, 200);
}
