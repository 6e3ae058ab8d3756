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
