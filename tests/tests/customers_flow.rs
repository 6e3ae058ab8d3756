//! Customers through the running system (`make run`): order events in, the profile out.

use serde_json::{Value, json};
use testkit::{RunningSystem, send, unique};

const KEY: &str = "Bearer dev-local-key";

async fn call(sys: &RunningSystem, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let headers = [("authorization", KEY), ("content-type", "application/json")];
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let reply = send(method, &format!("{}{path}", sys.base_url), &headers, body).await.unwrap();
    (reply.status, reply.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_events_make_one_profile_and_a_complaint_about_the_late_order_gets_an_apologetic_urgent_strategy() {
    let sys = RunningSystem::start();
    let customer = unique("u");
    let now = jiff::Timestamp::now();
    let ago = |hours: i64| (now - jiff::SignedDuration::from_hours(hours)).to_string();
    let event = |id: &str, kind: &str, order: &str, at: String| json!({"event_id": format!("{customer}-{id}"), "type": kind, "order_id": order, "customer_id": customer, "at": at});
    let mut placed = event("1", "placed", "o-1", ago(96));
    placed["total"] = json!(299.0);
    placed["currency"] = json!("CNY");
    placed["promised_delivery_at"] = json!(ago(24));
    placed["items"] = json!([{"sku": "p-1", "category": "手机", "quantity": 1, "unit_price": 299.0}]);
    // Shipped arrives before placed; a second order is delivered, then (late) reported shipped.
    let batch = json!({"events": [
        event("2", "shipped", "o-1", ago(72)),
        placed,
        event("3", "delivered", "o-2", ago(50)),
        event("4", "shipped", "o-2", ago(60)),
    ]});
    let (status, body) = call(&sys, "POST", "/orders/events", Some(batch.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["results"].as_array().unwrap().iter().all(|r| r["result"] == "applied"), "{body}");
    // The storefront retries the whole call: nothing is counted twice.
    let (status, again) = call(&sys, "POST", "/orders/events", Some(batch)).await;
    assert_eq!(status, 200);
    assert!(again["results"].as_array().unwrap().iter().all(|r| r["result"] == "duplicate"), "{again}");

    let (status, profile) = call(&sys, "GET", &format!("/customers/{customer}/profile"), None).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["contact"], Value::Null, "no contact details given");
    assert_eq!(profile["orders"]["count"], 2);
    assert_eq!(profile["orders"]["total"], 299.0);
    assert_eq!(profile["orders"]["top_categories"], json!(["手机"]));
    assert_eq!(profile["tier"], "regular");
    let open = profile["open_orders"].as_array().unwrap();
    assert_eq!(open.len(), 1, "o-2 was delivered: a shipped after it did not reopen it");
    assert_eq!((open[0]["order_id"].as_str(), open[0]["status"].as_str()), (Some("o-1"), Some("shipped")));
    assert!(open[0]["late_hours"].as_i64().unwrap() >= 23, "{}", open[0]);
    assert_eq!(profile["churn"], "medium", "{profile}");

    // The customer complains in chat: the answer tells the chatbot to apologise, hand over at
    // once, and name the late order.
    let conv = unique("c");
    let complaint = json!({"messages": [{"message_id": "m-1", "role": "customer", "text": "快递一直不到，我要投诉你们！",
        "sent_at": ago(0), "customer_id": customer, "channel": "app"}]});
    let (status, answer) = call(&sys, "POST", &format!("/conversations/{conv}/messages"), Some(complaint)).await;
    assert_eq!(status, 200, "{answer}");
    let strategy = &answer["strategy"];
    assert_eq!(
        (&strategy["tone"], &strategy["priority"], &strategy["route"], &strategy["apologise"]),
        (&json!("apologetic"), &json!("urgent"), &json!("agent"), &json!(true)),
        "{strategy}"
    );
    assert_eq!(strategy["facts"][0]["kind"], "late_order", "{strategy}");
    assert_eq!(strategy["facts"][0]["order_id"], "o-1");
    let rules: Vec<&str> = strategy["reasons"].as_array().unwrap().iter().filter_map(|r| r["rule"].as_str()).collect();
    assert!(rules.contains(&"late_order") && rules.contains(&"severe"), "{rules:?}");
    let (status, again) = call(&sys, "GET", &format!("/conversations/{conv}/strategy"), None).await;
    assert_eq!(status, 200);
    // Read later: the same decision and the same offer (decided once); the facts are as of now and
    // the profile may meanwhile know of the complaint (through the stream).
    for field in ["tone", "priority", "route", "apologise", "offer"] {
        assert_eq!(again[field], strategy[field], "{field}: {again}");
    }
    assert_eq!(again["facts"][0]["order_id"], "o-1");
    let (status, _) = call(&sys, "GET", &format!("/conversations/{}/strategy", unique("c")), None).await;
    assert_eq!(status, 404);

    let (status, unknown) = call(&sys, "GET", &format!("/customers/{}/profile", unique("nobody")), None).await;
    assert_eq!((status, unknown["type"].as_str()), (404, Some("urn:feedback-loop:problem:unknown-customer")));
    let (status, bad) =
        call(&sys, "POST", "/orders/events", Some(json!({"events": [{"event_id": "x", "type": "lost"}]}))).await;
    assert_eq!(status, 422, "{bad}");
    let fields: Vec<&str> =
        bad["invalid_params"].as_array().unwrap().iter().filter_map(|p| p["field"].as_str()).collect();
    assert!(fields.contains(&"events[0].type") && fields.contains(&"events[0].order_id"), "{fields:?}");
    let unauthorised = send("GET", &format!("{}/customers/{customer}/profile", sys.base_url), &[], "").await.unwrap();
    assert_eq!(unauthorised.status, 401, "caller auth on every customers route");
}

/// A customer with an open refund is not asked to rate the conversation until the refund is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_refund_holds_the_rating_request_until_the_refund_completes() {
    let sys = RunningSystem::start();
    let customer = unique("u");
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let day = |offset: i64| today.checked_add(jiff::Span::new().days(offset)).unwrap();
    let contact = json!({"email": format!("{customer}@example.com"), "consent": {"email": true, "sms": false},
        "time_zone": "Asia/Shanghai", "locale": "zh-CN"});
    assert_eq!(call(&sys, "PUT", &format!("/customers/{customer}/contact"), Some(contact)).await.0, 200);
    let refund = |id: &str, kind: &str, at: String| json!({"events": [{"event_id": format!("{customer}-{id}"), "type": kind, "order_id": "o-7", "customer_id": customer, "at": at}]});
    let (status, body) =
        call(&sys, "POST", "/orders/events", Some(refund("r1", "refund_requested", format!("{}T00:00:00Z", day(-4)))))
            .await;
    assert_eq!(status, 200, "{body}");
    let conv = unique("c");
    let close = json!({"resolved": false, "closed_at": format!("{}T01:00:00Z", day(-3)), "customer_id": customer});
    assert_eq!(call(&sys, "POST", &format!("/conversations/{conv}/close"), Some(close)).await.0, 200);
    let fire = |time: String| {
        let url = format!("{}/_local/schedules/FollowUpSchedule?time={time}", sys.base_url);
        async move { send("POST", &url, &[], "").await.unwrap().json() }
    };
    let (_, profile) = call(&sys, "GET", &format!("/customers/{customer}/profile"), None).await;
    assert_eq!(
        (&profile["open_refunds"], &profile["contact"]["consent_email"]),
        (&json!(["o-7"]), &json!(true)),
        "{profile}"
    );
    assert!(profile["contact"].get("email").is_none(), "no address in the profile");
    let run = fire(format!("{}T02:00:00Z", day(-2))).await;
    assert_eq!((&run["sent"], &run["held"]), (&json!(0), &json!(1)), "{run}");
    let (status, _) =
        call(&sys, "POST", "/orders/events", Some(refund("r2", "refund_completed", format!("{}T00:00:00Z", day(-1)))))
            .await;
    assert_eq!(status, 200);
    let run = fire(format!("{}T02:00:00Z", day(-1))).await;
    assert_eq!((&run["sent"], &run["held"]), (&json!(1), &json!(0)), "{run}");
}

/// A delayed order gets one apology e-mail before the customer asks; a second delay within the
/// fatigue window gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_order_gets_one_apology_and_a_second_delay_none() {
    let sys = RunningSystem::start();
    let customer = unique("u");
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let day = |offset: i64| today.checked_add(jiff::Span::new().days(offset)).unwrap();
    let contact = json!({"email": format!("{customer}@example.com"), "consent": {"email": true, "sms": false},
        "time_zone": "Asia/Shanghai", "locale": "en"});
    assert_eq!(call(&sys, "PUT", &format!("/customers/{customer}/contact"), Some(contact)).await.0, 200);
    let delayed = |id: &str, at: String| {
        json!({"events": [{"event_id": format!("{customer}-{id}"), "type": "delayed", "order_id": "o-5", "customer_id": customer,
            "at": at, "promised_delivery_at": format!("{}T10:00:00Z", day(3))}]})
    };
    let (status, body) =
        call(&sys, "POST", "/orders/events", Some(delayed("d1", format!("{}T00:00:00Z", day(-1))))).await;
    assert_eq!(status, 200, "{body}");
    let fire = |time: String| {
        let url = format!("{}/_local/schedules/FollowUpSchedule?time={time}", sys.base_url);
        async move { send("POST", &url, &[], "").await.unwrap().json() }
    };
    // 10:00 in Shanghai, after the event was recorded (the queue uses the real clock).
    let now = jiff::Timestamp::now();
    let run = fire((now + jiff::SignedDuration::from_mins(1)).to_string()).await;
    let sent_or_deferred = run["sent"].as_u64().unwrap() + run["deferred"].as_u64().unwrap();
    assert_eq!(sent_or_deferred, 1, "{run}");
    let mails = |data: Value| -> Vec<fakes::mail::ReadMail> {
        data["ses"]["RawMessage"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| fakes::mail::read(m["raw_data"].as_str().unwrap_or_default()))
            .filter(|m| m.to.iter().any(|t| t.starts_with(&customer)))
            .collect()
    };
    if run["sent"] == 0 {
        // Quiet hours in Shanghai now: the apology waits for the morning.
        let until = run["follow_ups"][0]["result"]["until"].as_str().unwrap().to_owned();
        let run = fire(until).await;
        assert_eq!(run["sent"], 1, "{run}");
    }
    let sent = mails(infra::local::moto::data(&sys.moto_url).await.unwrap());
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.contains("o-5") && sent[0].text.contains(&day(3).to_string()), "{}", sent[0].text);
    let (status, _) = call(&sys, "POST", "/orders/events", Some(delayed("d2", now.to_string()))).await;
    assert_eq!(status, 200);
    let run = fire((now + jiff::SignedDuration::from_hours(30)).to_string()).await;
    assert_eq!(run["sent"], 0, "the fatigue budget: {run}");
    assert_eq!(mails(infra::local::moto::data(&sys.moto_url).await.unwrap()).len(), 1);
}

/// A recovery offer end to end: a complaint about a late order gets a coupon in the strategy; the
/// storefront reports it made and accepted (once; a contradiction is refused); the rating, the
/// trigger and the offer reach the customer's profile through the table's stream; and the rating
/// and a repeat order count as the offer's payoff in its week.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_is_suggested_reported_folded_into_the_profile_and_paid_off() {
    let sys = RunningSystem::start();
    let customer = unique("u");
    let now = jiff::Timestamp::now();
    let ago = |hours: i64| (now - jiff::SignedDuration::from_hours(hours)).to_string();
    let shipped = json!({"events": [{"event_id": format!("{customer}-1"), "type": "shipped", "order_id": "o-1",
        "customer_id": customer, "at": ago(72), "total": 99.0, "currency": "CNY", "promised_delivery_at": ago(24)}]});
    assert_eq!(call(&sys, "POST", "/orders/events", Some(shipped)).await.0, 200);
    // A conversation outside the held-out share (10% by default, by the conversation's id).
    let conv = (0..).map(|_| unique("c")).find(|c| !feedback::customers::offers::held_out(c, 10)).unwrap();
    let complaint = json!({"messages": [{"message_id": "m-1", "role": "customer", "text": "快递到现在还没到，太慢了，一直没解决",
        "sent_at": ago(0), "customer_id": customer, "channel": "app"}]});
    let (status, answer) = call(&sys, "POST", &format!("/conversations/{conv}/messages"), Some(complaint)).await;
    assert_eq!(status, 200, "{answer}");
    let offer = &answer["strategy"]["offer"];
    assert_eq!(
        (&offer["kind"], &offer["value"], &offer["by"], &offer["state"]),
        (&json!("coupon"), &json!(20.0), &json!("bot"), &json!("suggested")),
        "{answer}"
    );

    let path = format!("/conversations/{conv}/offer");
    let made = json!({"made": true, "accepted": true});
    let (status, reported) = call(&sys, "POST", &path, Some(made.clone())).await;
    assert_eq!((status, &reported["offer"]["state"]), (200, &json!("accepted")), "{reported}");
    assert_eq!(call(&sys, "POST", &path, Some(made)).await, (200, reported), "the storefront's retry");
    let (status, contradiction) = call(&sys, "POST", &path, Some(json!({"made": false}))).await;
    assert_eq!((status, contradiction["type"].as_str()), (409, Some("urn:feedback-loop:problem:offer-contradiction")));
    let (status, bad) = call(&sys, "POST", &path, Some(json!({"made": "yes", "value": 5}))).await;
    assert_eq!(status, 422, "{bad}");
    let (status, none) =
        call(&sys, "POST", &format!("/conversations/{}/offer", unique("c")), Some(json!({"made": true}))).await;
    assert_eq!((status, none["type"].as_str()), (404, Some("urn:feedback-loop:problem:no-offer")));

    let rating = json!({"conversation_id": conv, "customer_id": customer, "stars": 5, "channel": "app"});
    assert_eq!(call(&sys, "POST", "/ratings", Some(rating)).await.0, 201);
    let reorder = || {
        json!({"events": [{"event_id": format!("{customer}-2"), "type": "placed", "order_id": "o-2",
        "customer_id": customer, "at": jiff::Timestamp::now().to_string(), "total": 59.0, "currency": "CNY"}]})
    };
    // The stream folds the offer, the trigger and the rating into the profile (within seconds).
    let mut profile = Value::Null;
    for _ in 0..80 {
        profile = call(&sys, "GET", &format!("/customers/{customer}/profile"), None).await.1;
        if profile["feedback"]["ratings"] == 1 && profile["feedback"]["offers_90d"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let feedback = &profile["feedback"];
    assert_eq!(
        (&feedback["ratings"], &feedback["average_stars"], &feedback["offers_90d"]),
        (&json!(1), &json!(5.0), &json!(1)),
        "{profile}"
    );
    assert!(feedback["last_trigger"]["category"].is_string(), "{profile}");
    assert_eq!(call(&sys, "POST", "/orders/events", Some(reorder())).await.0, 200);

    let week = feedback::time::IsoWeek::of(now, &feedback::config::WeekSettings::default().shop_time_zone).to_string();
    let reports =
        feedback_aws::dynamo::DynamoReportStore::new(sys.dynamodb().await, "FeedbackTable", Default::default());
    let offers = feedback::reporting::ReportStore::week_figures(&reports, &week).await.unwrap().all.offers;
    assert_eq!((offers.suggested, offers.made, offers.accepted, offers.cost_minor), (1, 1, 1, 2_000));
    assert_eq!((offers.offered_rated, offers.offered_satisfied, offers.offered_repeat), (1, 1, 1), "{offers:?}");
}
