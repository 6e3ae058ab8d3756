//! The follow-up as a person would watch it locally: contact details and an unresolved
//! conversation through the API, then the schedule fired at a chosen time through the runner.

use serde_json::{Value, json};
use testkit::{RunningSystem, send, unique};

const KEY: &str = "Bearer dev-local-key";

async fn call(sys: &RunningSystem, method: &str, path: &str, body: Value) -> (u16, Value) {
    let headers = [("authorization", KEY), ("content-type", "application/json")];
    let reply = send(method, &format!("{}{path}", sys.base_url), &headers, body.to_string()).await.unwrap();
    (reply.status, reply.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn firing_the_schedule_sends_the_follow_up_of_an_unresolved_conversation() {
    let sys = RunningSystem::start();
    let customer = unique("u");
    let email = format!("{customer}@example.com");
    let (status, body) = call(
        &sys,
        "PUT",
        &format!("/customers/{customer}/contact"),
        json!({
        "email": email, "consent": {"email": true, "sms": false}, "time_zone": "Asia/Shanghai", "locale": "zh-CN"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Closed three days ago at 09:00 Shanghai, so the follow-up (due a day later) is sent two days
    // ago in daytime there, and its link (valid 14 days) still works today.
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let day = |offset: i64| today.checked_add(jiff::Span::new().days(offset)).unwrap();
    let closed_at = format!("{}T01:00:00Z", day(-3));
    let conv = unique("c");
    let (status, body) = call(
        &sys,
        "POST",
        &format!("/conversations/{conv}/close"),
        json!({"resolved": false, "closed_at": closed_at, "customer_id": customer}),
    )
    .await;
    assert_eq!((status, &body["follow_up"]["state"]), (200, &json!("scheduled")), "{body}");

    let fire = |time: &str| {
        let url = format!("{}/_local/schedules/FollowUpSchedule?time={time}", sys.base_url);
        async move { send("POST", &url, &[], "").await.unwrap() }
    };
    let early = fire(&format!("{}T12:00:00Z", day(-3))).await;
    assert_eq!((early.status, &early.json()["sent"]), (200, &json!(0)), "{:?}", early.json());
    let run = fire(&format!("{}T02:00:00Z", day(-2))).await;
    assert_eq!(run.status, 200, "{:?}", run.json());
    assert_eq!(run.json()["sent"], 1, "{:?}", run.json());

    let data: Value = infra::local::moto::data(&sys.moto_url).await.unwrap();
    let mails: Vec<&str> = data["ses"]["RawMessage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["raw_data"].as_str())
        .filter(|raw| raw.contains(&email))
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains(&format!("List-Unsubscribe: <{}/u/", sys.base_url)), "links point at the local API");
    let unknown = send("POST", &format!("{}/_local/schedules/Nope", sys.base_url), &[], "").await.unwrap();
    assert_eq!(unknown.status, 404);

    // The link in the e-mail: the page shows, only the form saves, once.
    // The rating link is in the text part; the unsubscribe link, with its own token, in
    // the List-Unsubscribe header.
    let text = fakes::mail::read(mails[0]).unwrap().text;
    let token = text.split("/r/").nth(1).unwrap().split(['\r', '\n', ' ']).next().unwrap().to_owned();
    let unsubscribe = mails[0].split("/u/").nth(1).unwrap().split('>').next().unwrap().to_owned();
    assert_ne!(token, unsubscribe);
    let page = send("GET", &format!("{}/r/{token}", sys.base_url), &[], "").await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(String::from_utf8_lossy(&page.body).contains("name=\"stars\""));
    let dynamodb = sys.dynamodb().await;
    let rating = || {
        dynamodb
            .get_item()
            .table_name("FeedbackTable")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{conv}")))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("RATING".into()))
            .send()
    };
    assert!(rating().await.unwrap().item.is_none(), "opening the link (a mail scanner) rates nothing");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    for _ in 0..2 {
        let saved = send(
            "POST",
            &format!("{}/r/{token}", sys.base_url),
            &form,
            "stars=2&comment=%E8%BF%98%E6%98%AF%E6%B2%A1%E8%A7%A3%E5%86%B3",
        )
        .await
        .unwrap();
        assert_eq!(saved.status, 200);
        assert!(String::from_utf8_lossy(&saved.body).contains("谢谢"));
    }
    let item = rating().await.unwrap().item.expect("the rating is saved");
    assert_eq!(item["stars"].as_n().unwrap(), "2");
    assert_eq!(item["comment"].as_s().unwrap(), "还是没解决");
    let again = send("GET", &format!("{}/r/{token}", sys.base_url), &[], "").await.unwrap();
    assert!(String::from_utf8_lossy(&again.body).contains("已经评价"));
    let forged = send("GET", &format!("{}/r/{}x", sys.base_url, token), &[], "").await.unwrap();
    assert_eq!(forged.status, 404);
    // One-click unsubscribe, as mail clients send it.
    let out =
        send("POST", &format!("{}/u/{unsubscribe}", sys.base_url), &form, "List-Unsubscribe=One-Click").await.unwrap();
    assert_eq!(out.status, 200);
    let optout = dynamodb
        .get_item()
        .table_name("FeedbackTable")
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("CUST#{customer}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("OPTOUT".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("opt-out recorded");
    assert_eq!(optout["email"].as_bool().unwrap(), &true);
}

/// The research panel through the running system: a member and a customer who did not join, a
/// staff invitation, the schedule's run mailing only the member a link to the survey, the answers
/// kept once, and the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panel_member_is_invited_answers_once_and_the_survey_is_reported() {
    let sys = RunningSystem::start();
    let (member, other) = (unique("u"), unique("u"));
    for (customer, research) in [(&member, true), (&other, false)] {
        let contact = json!({"email": format!("{customer}@example.com"), "consent": {"email": true, "sms": false, "research": research},
            "time_zone": "Asia/Shanghai", "locale": "en"});
        let (status, body) = call(&sys, "PUT", &format!("/customers/{customer}/contact"), contact).await;
        assert_eq!((status, &body["consent"]["research"]), (200, &json!(research)), "{body}");
    }
    let staff = format!("Bearer {}", infra::STAFF_DEV_TOKEN);
    let staff_headers = [("authorization", staff.as_str()), ("content-type", "application/json")];
    let invite = |body: Value| {
        let url = format!("{}/surveys/delivery-2026-12/invitations", sys.base_url);
        async move { send("POST", &url, &staff_headers, body.to_string()).await.unwrap() }
    };
    let invited = invite(json!({"customer_ids": [member, other]})).await;
    assert_eq!(invited.status, 200, "{:?}", invited.json());
    let outcomes: Vec<Value> =
        invited.json()["results"].as_array().unwrap().iter().map(|r| r["outcome"].clone()).collect();
    assert_eq!(outcomes, [json!("queued"), json!("not_in_panel")]);
    assert_eq!(invite(json!({"customer_ids": [member]})).await.json()["results"][0]["outcome"], "already_invited");
    let unknown = send(
        "POST",
        &format!("{}/surveys/nope/invitations", sys.base_url),
        &staff_headers,
        r#"{"customer_ids":["u-1"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(unknown.status, 404);

    // Tomorrow at noon in Shanghai: outside quiet hours, within the run's look-back.
    let tomorrow = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
        .checked_add(jiff::Span::new().days(1))
        .unwrap();
    let run =
        send("POST", &format!("{}/_local/schedules/FollowUpSchedule?time={tomorrow}T04:00:00Z", sys.base_url), &[], "")
            .await
            .unwrap();
    assert_eq!((run.status, &run.json()["sent"]), (200, &json!(1)), "{:?}", run.json());
    let data: Value = infra::local::moto::data(&sys.moto_url).await.unwrap();
    let mails: Vec<&str> =
        data["ses"]["RawMessage"].as_array().into_iter().flatten().filter_map(|m| m["raw_data"].as_str()).collect();
    assert!(!mails.iter().any(|m| m.contains(&format!("{other}@example.com"))), "only the member is mailed");
    let mail = mails.iter().find(|m| m.contains(&format!("{member}@example.com"))).expect("the member's invitation");
    let text = fakes::mail::read(mail).unwrap().text;
    let token = text.split("/s/").nth(1).unwrap().split(['\r', '\n', ' ']).next().unwrap().to_owned();

    let page = send("GET", &format!("{}/s/{token}", sys.base_url), &[], "").await.unwrap();
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert_eq!(page.status, 200);
    assert!(html.contains("How was your delivery?") && html.contains("name=\"matters\""), "{html}");
    let rate = send("GET", &format!("{}/r/{token}", sys.base_url), &[], "").await.unwrap();
    assert_eq!(rate.status, 404, "a survey link rates nothing");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let answers = "overall=2&matters=updates&improve=%E7%89%A9%E6%B5%81%E4%BF%A1%E6%81%AF%E4%B8%89%E5%A4%A9%E6%B2%A1%E6%9B%B4%E6%96%B0";
    let bad = send("POST", &format!("{}/s/{token}", sys.base_url), &form, "overall=9").await.unwrap();
    assert_eq!(bad.status, 422);
    for expected in ["Thank you for your answers", "already answered"] {
        let saved = send("POST", &format!("{}/s/{token}", sys.base_url), &form, answers).await.unwrap();
        assert_eq!(saved.status, 200);
        assert!(String::from_utf8_lossy(&saved.body).contains(expected));
    }

    // The stream's analysis reads the text answer within moments.
    let mut survey = Value::Null;
    for _ in 0..50 {
        let report = send("GET", &format!("{}/surveys", sys.base_url), &staff_headers, "").await.unwrap();
        assert_eq!(report.status, 200, "{:?}", report.json());
        survey = report.json()["surveys"][0].clone();
        if survey["questions"][2]["sentiment"] != json!([0, 0, 0]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!((&survey["invited"], &survey["answered"]), (&json!(1), &json!(1)), "{survey}");
    assert_eq!(survey["questions"][0]["stars"], json!([0, 1, 0, 0, 0]));
    assert_eq!(survey["questions"][2]["sentiment"], json!([1, 0, 0]), "the text answer read as negative");
    assert_eq!(survey["questions"][2]["examples"][0], "物流信息三天没更新");
    let view = send("GET", &format!("{}/dashboard/view", sys.base_url), &staff_headers, "").await.unwrap();
    let view = String::from_utf8_lossy(&view.body).into_owned();
    // In the shop's language (the template's StaffLocale, zh-CN).
    assert!(view.contains("data-survey=\"delivery-2026-12\"") && view.contains("受邀 1 人中 1 人已作答"), "{view}");
}
