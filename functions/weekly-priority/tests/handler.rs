//! The weekly run against moto: the report is built from real aggregates (written by the real
//! analysis store), one digest e-mail goes to the staff list through SES v2 and one message to the
//! staff topic through SNS, both read back from moto; a retry sends nothing more; an empty week
//! gets a short digest.

use feedback::config::WeekSettings;
use feedback::reporting::{DigestSettings, ReportStore};
use feedback_aws::dynamo::DynamoReportStore;
use feedback_aws::notify::AwsDigestSender;
use serde_json::{Value, json};
use testkit::{fresh_feedback_table, fresh_topic, moto_data, moto_url, notifications, seed_rating, unique};
use weekly_priority::App;

const FROM: &str = "feedback@shop.example.com";

struct World {
    app: App,
    store: DynamoReportStore,
    topic: String,
    staff: String,
}

fn settings(staff: &str, from: &str) -> DigestSettings {
    DigestSettings {
        weeks: WeekSettings::default(),
        recipients: vec![staff.to_owned()],
        from_address: from.into(),
        shop_name: "小店".into(),
        dashboard_url: Some("https://fb.example.com/dashboard".into()),
        lease_seconds: 300,
        locale: feedback::i18n::Locale::En,
    }
}

async fn sender(topic: &str, from: &str) -> AwsDigestSender {
    let config = feedback_aws::sdk::local_sdk_config(moto_url(), "us-east-1").await;
    AwsDigestSender {
        ses: aws_sdk_sesv2::Client::new(&config),
        sns: aws_sdk_sns::Client::new(&config),
        from_address: from.into(),
        topic_arn: topic.into(),
        configuration_set: None,
    }
}

async fn world() -> (World, aws_sdk_dynamodb::Client, String) {
    let (client, table) = fresh_feedback_table().await;
    let (_, topic) = fresh_topic().await;
    let config = feedback_aws::sdk::local_sdk_config(moto_url(), "us-east-1").await;
    aws_sdk_sesv2::Client::new(&config)
        .create_email_identity()
        .email_identity(FROM)
        .send()
        .await
        .expect("SES identity");
    let staff = format!("{}@shop.example.com", unique("ops"));
    let store = DynamoReportStore::new(client.clone(), &table, WeekSettings::default());
    let app = App::new(store.clone(), sender(&topic, FROM).await, settings(&staff, FROM));
    (World { app, store, topic, staff }, client, table)
}

impl World {
    async fn mails(&self) -> Vec<String> {
        let data = moto_data().await;
        data["ses"]["RawMessage"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["raw_data"].as_str().unwrap_or_default().to_owned())
            .filter(|raw| fakes::mail::read(raw).is_some_and(|m| m.to.contains(&self.staff)))
            .collect()
    }

    async fn run(&self, time: &str) -> Value {
        self.app.handle(json!({ "time": time })).await.expect("weekly run")["run"].clone()
    }
}

/// The text part, the HTML part and the number of inline PNGs of a raw digest.
fn decoded_parts(raw: &str) -> (String, String, usize) {
    let mail = fakes::mail::read(raw).unwrap();
    for (_, png) in &mail.inline {
        assert_eq!(&png[..4], b"\x89PNG");
    }
    (mail.text, mail.html, mail.inline.len())
}

#[tokio::test]
async fn the_monday_run_sends_one_digest_by_mail_and_one_to_the_staff_topic() {
    let (w, client, table) = world().await;
    // Week 47 (16–22 Nov 2026): delivery complaints lead; week 46 had one.
    let complaints = [
        "快递一个星期都没到，太慢了",
        "物流太慢了，等了十天",
        "发货太慢，客服也不回复",
        "The parcel is two weeks late and nobody answers",
    ];
    for (i, text) in complaints.iter().enumerate() {
        let customer = format!("u-{i}");
        seed_rating(&client, &table, &customer, 1, Some(text), &[], Some(29_900), "2026-11-18T03:00:00Z", false).await;
    }
    seed_rating(
        &client,
        &table,
        "u-9",
        2,
        Some("质量太差了，用了一次就坏了"),
        &["quality"],
        None,
        "2026-11-19T03:00:00Z",
        false,
    )
    .await;
    seed_rating(&client, &table, "u-10", 5, Some("很满意，谢谢客服"), &[], None, "2026-11-20T03:00:00Z", true).await;
    seed_rating(&client, &table, "u-11", 5, None, &[], None, "2026-11-21T03:00:00Z", false).await;
    seed_rating(&client, &table, "u-12", 1, Some("快递太慢了"), &[], None, "2026-11-10T03:00:00Z", false).await;

    // Monday 23 Nov 09:00 in Shanghai.
    let run = w.run("2026-11-23T01:00:00Z").await;
    assert_eq!(run["week"], "2026-W47");
    assert_eq!(run["report_created"], true);
    assert_eq!(run["top_issue"], "logistics", "{run}");
    assert_eq!(run["email"]["result"], "sent", "{run}");
    assert_eq!(run["staff_topic"]["result"], "sent", "{run}");

    let mails = w.mails().await;
    assert_eq!(mails.len(), 1);
    let (text, html, images) = decoded_parts(&mails[0]);
    assert_eq!(images, 3, "ranking, sentiment and follow-up charts inline");
    assert!(html.contains("cid:ranking@feedback-loop"), "{html}");
    // 7 ratings, 2 of them 4–5★ → CSAT 28.6%; one came through a follow-up link.
    assert!(text.contains("CSAT 28.6%") && text.contains("7 ratings"), "{text}");
    assert!(text.contains("1. Shipping and delivery — priority"), "{text}");
    assert!(text.contains("一个星期都没到") || text.contains("太慢"), "an example comment: {text}");
    let report = w.store.report("2026-W47").await.unwrap().unwrap();
    assert_eq!((report.issues[0].items, report.issues[0].previous_items), (4, 1));
    assert_eq!(report.headline.follow_up_answers, 1);
    assert_eq!(report.issues[0].order_value_minor, 4 * 29_900);

    let published = notifications(moto_url(), &w.topic).await;
    assert_eq!(published.len(), 1);
    assert!(
        published[0].message.starts_with("Feedback 2026-W47 (2026-11-16 to 2026-11-22)"),
        "{}",
        published[0].message
    );

    // The scheduler retries (or a second run fires): nothing more is sent, the report is kept.
    let again = w.run("2026-11-23T01:05:00Z").await;
    assert_eq!(again["report_created"], false);
    assert_eq!(
        (again["email"]["result"].as_str(), again["staff_topic"]["result"].as_str()),
        (Some("already_sent"), Some("already_sent"))
    );
    assert_eq!(w.mails().await.len(), 1);
    assert_eq!(notifications(moto_url(), &w.topic).await.len(), 1);
    assert_eq!(w.store.report("2026-W47").await.unwrap().unwrap(), report);
}

#[tokio::test]
async fn a_week_without_feedback_gets_a_short_no_feedback_digest() {
    let (w, _, _) = world().await;
    let run = w.run("2026-12-07T01:00:00Z").await;
    assert_eq!((run["week"].as_str(), run["empty"].as_bool()), (Some("2026-W49"), Some(true)));
    assert_eq!(run["email"]["result"], "sent");
    let mails = w.mails().await;
    assert_eq!(mails.len(), 1);
    let (text, _, images) = decoded_parts(&mails[0]);
    assert_eq!(images, 0);
    assert!(text.contains("No feedback was recorded this week"), "{text}");
    let published = notifications(moto_url(), &w.topic).await;
    assert_eq!(published.len(), 1);
    assert!(published[0].message.contains("no feedback this week"), "{}", published[0].message);
}

/// The report item as stored (lease and digest attributes included).
async fn report_item(client: &aws_sdk_dynamodb::Client, table: &str, week: &str) -> Value {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("REPORT#{week}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("REPORT".into()))
        .send()
        .await
        .unwrap();
    let item = out.item.unwrap_or_default();
    let pairs = item.iter().map(|(k, v)| {
        let v = v.as_s().map(|s| json!(s)).or_else(|_| v.as_n().map(|n| json!(n))).unwrap_or(Value::Null);
        (k.clone(), v)
    });
    Value::Object(pairs.collect())
}

/// The report of week 47 stored as a first run would have stored it.
async fn stored_report(w: &World) {
    let report = feedback::insights::weekly::build_report(
        &w.store.week_figures("2026-W47").await.unwrap(),
        &w.store.week_figures("2026-W46").await.unwrap(),
        "2026-11-23T01:00:00Z".parse().unwrap(),
    );
    w.store.save_report(&report).await.unwrap();
}

#[tokio::test]
async fn a_failed_email_is_recorded_the_topic_is_still_sent_and_the_retry_sends_the_email_once() {
    let (w, client, table) = world().await;
    seed_rating(&client, &table, "u-1", 1, Some("快递太慢了"), &[], None, "2026-11-18T03:00:00Z", false).await;
    // The first attempt's sender address is not verified in SES: the e-mail fails, so does the run,
    // but only after the staff topic got its message.
    let unverified = format!("{}@unverified.example.com", unique("shop"));
    let failing = App::new(w.store.clone(), sender(&w.topic, &unverified).await, settings(&w.staff, &unverified));
    assert!(failing.handle(json!({"time": "2026-11-23T01:00:00Z"})).await.is_err());
    assert!(w.mails().await.is_empty());
    assert_eq!(notifications(moto_url(), &w.topic).await.len(), 1, "one channel's failure does not hold up the other");
    let item = report_item(&client, &table, "2026-W47").await;
    assert!(item["email_failure"].as_str().is_some_and(|f| !f.is_empty()), "the failure is kept on the item: {item}");
    assert!(item.get("email_lease_owner").is_none(), "the claim was released: {item}");
    // The retry claims the released e-mail at once and sends each digest once.
    let run = w.run("2026-11-23T01:01:00Z").await;
    assert_eq!(
        (run["email"]["result"].as_str(), run["staff_topic"]["result"].as_str()),
        (Some("sent"), Some("already_sent"))
    );
    assert_eq!(w.mails().await.len(), 1);
    assert_eq!(notifications(moto_url(), &w.topic).await.len(), 1);
}

#[tokio::test]
async fn a_later_run_waits_for_a_live_claim_on_the_real_clock() {
    use feedback::lease::{Claim, Lease, run_owner};
    use feedback::reporting::DigestChannel;
    let (w, client, table) = world().await;
    seed_rating(&client, &table, "u-1", 1, Some("快递太慢了"), &[], None, "2026-11-18T03:00:00Z", false).await;
    stored_report(&w).await;
    // The 01:00 run started late (its schedule time is long past) and claimed the e-mail just now.
    // Its lease runs on the real clock, not from 01:00.
    let owner = run_owner("weekly-digest", "2026-11-23T01:00:00Z".parse().unwrap());
    let claim = w.store.claim_digest("2026-W47", DigestChannel::Email, &Lease::take(owner, 70)).await.unwrap();
    assert_eq!(claim, Claim::Claimed);
    // A run scheduled at 01:15 must not take it over while that run may still be sending.
    let err = w.app.handle(json!({"time": "2026-11-23T01:15:00Z"})).await.unwrap_err();
    assert!(matches!(err, feedback::reporting::DigestError::InProgress("email")), "{err}");
    assert!(w.mails().await.is_empty());
}

#[tokio::test]
async fn the_retry_of_a_run_that_died_mid_send_finishes_the_job() {
    use feedback::lease::{Claim, Lease, run_owner};
    use feedback::reporting::DigestChannel;
    let (w, client, table) = world().await;
    seed_rating(&client, &table, "u-1", 1, Some("快递太慢了"), &[], None, "2026-11-18T03:00:00Z", false).await;
    stored_report(&w).await;
    // The 01:00 run claimed the e-mail two minutes ago and died mid-send (a timeout: nothing was
    // released). Its lease was as long as the invocation could live.
    let scheduled: feedback::Timestamp = "2026-11-23T01:00:00Z".parse().unwrap();
    let died = Lease::at(
        run_owner("weekly-digest", scheduled),
        feedback::Timestamp::now() - jiff::SignedDuration::from_mins(2),
        70,
    );
    assert_eq!(w.store.claim_digest("2026-W47", DigestChannel::Email, &died).await.unwrap(), Claim::Claimed);
    // The scheduler's retry of the same run (same scheduled time) takes the lapsed claim and sends.
    let run = w.run("2026-11-23T01:00:00Z").await;
    assert_eq!((run["email"]["result"].as_str(), run["staff_topic"]["result"].as_str()), (Some("sent"), Some("sent")));
    assert_eq!(w.mails().await.len(), 1);
    assert_eq!(notifications(moto_url(), &w.topic).await.len(), 1);
    let item = report_item(&client, &table, "2026-W47").await;
    assert!(item.get("email_lease_owner").is_none() && item.get("email_sent_at").is_some(), "{item}");
    // And a second retry sends nothing more.
    let again = w.run("2026-11-23T01:00:00Z").await;
    assert_eq!(again["email"]["result"], "already_sent");
    assert_eq!(w.mails().await.len(), 1);
}

#[tokio::test]
async fn a_run_whose_lease_was_taken_over_cannot_mark_the_new_holders_work() {
    use feedback::errors::StoreError;
    use feedback::lease::{Claim, Finish, Lease, run_owner};
    use feedback::reporting::DigestChannel;
    let (w, client, table) = world().await;
    stored_report(&w).await;
    let now = feedback::Timestamp::now();
    // A run took the e-mail ten minutes ago with a five-minute lease and stalled; its lease lapsed.
    let stalled = Lease::at(
        run_owner("weekly-digest", now - jiff::SignedDuration::from_mins(30)),
        now - jiff::SignedDuration::from_mins(10),
        300,
    );
    assert_eq!(w.store.claim_digest("2026-W47", DigestChannel::Email, &stalled).await.unwrap(), Claim::Claimed);
    // Another run takes it over.
    let current = Lease::take(run_owner("weekly-digest", now), 300);
    assert_eq!(w.store.claim_digest("2026-W47", DigestChannel::Email, &current).await.unwrap(), Claim::Claimed);
    // The stalled run wakes up: neither its "sent" nor its release is written.
    let sent = w.store.finish_digest("2026-W47", DigestChannel::Email, &stalled, Finish::Sent("m-old"), now).await;
    assert!(matches!(sent, Err(StoreError::LeaseLost(_))), "{sent:?}");
    let released = w
        .store
        .finish_digest("2026-W47", DigestChannel::Email, &stalled, Finish::Released { failure: None }, now)
        .await;
    assert!(matches!(released, Err(StoreError::LeaseLost(_))), "{released:?}");
    let item = report_item(&client, &table, "2026-W47").await;
    assert_eq!(item["email_lease_owner"].as_str(), Some(current.owner.as_str()), "{item}");
    assert!(item.get("email_sent_at").is_none(), "{item}");
    // The holder finishes.
    w.store.finish_digest("2026-W47", DigestChannel::Email, &current, Finish::Sent("m-1"), now).await.unwrap();
    let item = report_item(&client, &table, "2026-W47").await;
    assert_eq!(item["email_message_id"].as_str(), Some("m-1"));
}
