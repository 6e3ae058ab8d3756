//! The follow-up run (issue 5) against moto through the real adapters: DynamoDB for the queue and
//! the customer, SES v2 for e-mail and SNS for SMS, read back from moto's `/moto-api/data.json`.

use feedback::Timestamp;
use feedback::conversations::store::ConversationStore;
use feedback::conversations::{Channel, Closing};
use feedback::followups::contacts::{Consent, ContactDetails, ContactStore};
use feedback::followups::link::LinkSigner;
use feedback::followups::{FollowUpChannel, FollowUpPolicy, RunOutcome, RunSettings, run_follow_ups};
use feedback_aws::dynamo::{DynamoContactStore, DynamoConversationStore, DynamoFollowUpStore};
use feedback_aws::notify::AwsFollowUpSender;
use serde_json::Value;
use testkit::{fresh_feedback_table, moto_url, unique};

const FROM: &str = "service@shop.example.com";

struct World {
    table: String,
    client: feedback_aws::dynamo::Client,
    store: DynamoFollowUpStore,
    sender: AwsFollowUpSender,
    signer: LinkSigner,
    settings: RunSettings,
}

async fn world() -> World {
    let (client, table) = fresh_feedback_table().await;
    let config = feedback_aws::sdk::local_sdk_config(moto_url(), "us-east-1").await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    ses.create_email_identity().email_identity(FROM).send().await.expect("SES identity");
    World {
        store: DynamoFollowUpStore::new(client.clone(), &table),
        sender: AwsFollowUpSender {
            ses,
            sns: aws_sdk_sns::Client::new(&config),
            from_address: FROM.into(),
            configuration_set: None,
        },
        signer: LinkSigner::new(b"test key test key test key test key!").unwrap(),
        settings: RunSettings {
            policy: FollowUpPolicy::default(),
            from_address: FROM.into(),
            shop_name: "小店".into(),
            public_base_url: "https://feedback.shop.example.com".into(),
            link_valid_days: 14,
            lookback_hours: 72,
            lease_seconds: 120,
            max_attempts: 3,
            tiers: Default::default(),
        },
        table,
        client,
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

impl World {
    async fn customer(&self, email: Option<&str>, phone: Option<&str>, consent: Consent) -> String {
        let id = unique("u");
        let contact = ContactDetails {
            customer_id: id.clone().into(),
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            consent,
            time_zone: "Asia/Shanghai".into(),
            locale: "zh-CN".into(),
            updated_at: Timestamp::now(),
        };
        DynamoContactStore::new(self.client.clone(), &self.table).put_contact(&contact).await.unwrap();
        id
    }

    /// Closes a conversation unresolved at `closed_at` (its follow-up is due 24 h later).
    async fn unresolved(&self, customer: &str, closed_at: &str) -> String {
        let conv = unique("c");
        let store = DynamoConversationStore::new(self.client.clone(), &self.table, 180);
        let closing = Closing {
            conversation_id: conv.clone().into(),
            resolved: false,
            closed_at: at(closed_at),
            customer_id: Some(customer.into()),
            channel: Some(Channel::App),
            locale: Some("zh-CN".into()),
            agent_id: None,
        };
        store.close(&closing, None, Some(at(closed_at) + jiff::SignedDuration::from_hours(24))).await.unwrap();
        conv
    }

    /// A customer with e-mail consent and an unresolved conversation: (e-mail, customer, conversation).
    async fn emailable(&self) -> (String, String, String) {
        let email = format!("{}@example.com", unique("buyer"));
        let customer = self.customer(Some(&email), None, Consent { email: true, sms: false, research: false }).await;
        let conv = self.unresolved(&customer, "2026-11-01T01:00:00Z").await;
        (email, customer, conv)
    }

    /// The conversation's follow-up as the run sees it at `now`.
    async fn due(&self, conv: &str, now: Timestamp) -> feedback::followups::DueFollowUp {
        use feedback::followups::FollowUpStore;
        self.store.due(now, 72).await.unwrap().into_iter().find(|f| f.conversation_id == conv).unwrap()
    }

    async fn run(&self, now: &str) -> Vec<(String, RunOutcome)> {
        run_follow_ups(&self.store, &self.sender, &self.signer, &self.settings, at(now)).await.unwrap()
    }

    async fn follow_up_item(
        &self,
        conv: &str,
    ) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        testkit::conversation_items(&self.client, &self.table, conv).await.remove("FOLLOWUP").unwrap()
    }
}

async fn moto_data() -> Value {
    infra::local::moto::data(moto_url()).await.unwrap()
}

/// Raw e-mails moto recorded as sent to `to`.
async fn mails_to(to: &str) -> Vec<String> {
    let data = moto_data().await;
    let mut out = Vec::new();
    for m in data["ses"]["RawMessage"].as_array().into_iter().flatten() {
        let raw = m["raw_data"].as_str().unwrap_or_default();
        if fakes::mail::read(raw).is_some_and(|mail| mail.to.iter().any(|t| t == to)) {
            out.push(raw.to_owned());
        }
    }
    out
}

async fn sms_to(phone: &str) -> Vec<String> {
    let data = moto_data().await;
    data["sns"]["SMS"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["phone_number"] == phone)
        .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn outcome<'a>(outcomes: &'a [(String, RunOutcome)], conv: &str) -> Option<&'a RunOutcome> {
    outcomes.iter().find(|(c, _)| c == conv).map(|(_, o)| o)
}

#[tokio::test]
async fn an_unresolved_conversation_gets_one_email_then_one_reminder() {
    let w = world().await;
    let email = format!("{}@example.com", unique("buyer"));
    let customer = w.customer(Some(&email), None, Consent { email: true, sms: false, research: false }).await;
    // Closed 09:00 Shanghai on the 1st; due 09:00 on the 2nd; the run at 10:00 sends.
    let conv = w.unresolved(&customer, "2026-11-01T01:00:00Z").await;
    assert_eq!(outcome(&w.run("2026-11-02T00:30:00Z").await, &conv), None, "not due yet");
    let outcomes = w.run("2026-11-02T02:00:00Z").await;
    assert_eq!(outcome(&outcomes, &conv), Some(&RunOutcome::Sent { channel: FollowUpChannel::Email }));
    let mails = mails_to(&email).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("List-Unsubscribe: <https://feedback.shop.example.com/u/"));
    assert!(mails[0].contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    // The same run again sends nothing more; the reminder is due 48 h later.
    assert_eq!(outcome(&w.run("2026-11-02T02:00:00Z").await, &conv), None);
    let item = w.follow_up_item(&conv).await;
    assert_eq!((item["state"].as_s().unwrap().as_str(), item["kind"].as_s().unwrap().as_str()), ("due", "reminder"));
    let outcomes = w.run("2026-11-04T02:30:00Z").await;
    assert_eq!(outcome(&outcomes, &conv), Some(&RunOutcome::Sent { channel: FollowUpChannel::Email }));
    assert_eq!(mails_to(&email).await.len(), 2);
    assert_eq!(w.follow_up_item(&conv).await["state"].as_s().unwrap(), "sent");
    assert_eq!(outcome(&w.run("2026-11-10T02:30:00Z").await, &conv), None, "then it stops");
    // Counted in the follow-up funnel of the weeks they were sent in (the weekly report reads it).
    let store = feedback_aws::dynamo::DynamoReportStore::new(w.client.clone(), &w.table, Default::default());
    use feedback::reporting::ReportStore;
    assert_eq!(store.week_figures("2026-W45").await.unwrap().all.follow_ups_sent, 1, "sent Mon 2 Nov");
    assert_eq!(store.week_figures("2026-W45").await.unwrap().all.reminders_sent, 1, "reminded Wed 4 Nov");
}

#[tokio::test]
async fn sms_when_only_the_phone_is_consented_and_quiet_hours_defer() {
    let w = world().await;
    let phone = reachable_phone();
    let customer =
        w.customer(Some("x@example.com"), Some(&phone), Consent { email: false, sms: true, research: false }).await;
    let conv = w.unresolved(&customer, "2026-11-01T14:00:00Z").await; // due 22:00 Shanghai on the 2nd
    let outcomes = w.run("2026-11-02T14:30:00Z").await;
    assert_eq!(outcome(&outcomes, &conv), Some(&RunOutcome::Deferred { until: at("2026-11-03T01:00:00Z") }));
    assert!(sms_to(&phone).await.is_empty());
    let outcomes = w.run("2026-11-03T01:15:00Z").await;
    assert_eq!(outcome(&outcomes, &conv), Some(&RunOutcome::Sent { channel: FollowUpChannel::Sms }));
    let sms = sms_to(&phone).await;
    assert_eq!(sms.len(), 1);
    assert!(sms[0].contains("https://feedback.shop.example.com/r/"), "{}", sms[0]);
}

#[tokio::test]
async fn the_fatigue_budget_rated_conversations_and_missing_consent_are_skipped_with_a_reason() {
    let w = world().await;
    let email = format!("{}@example.com", unique("buyer"));
    let customer = w.customer(Some(&email), None, Consent { email: true, sms: false, research: false }).await;
    let first = w.unresolved(&customer, "2026-11-01T01:00:00Z").await;
    let second = w.unresolved(&customer, "2026-11-01T02:00:00Z").await;
    let outcomes = w.run("2026-11-02T03:00:00Z").await;
    assert_eq!(outcome(&outcomes, &first), Some(&RunOutcome::Sent { channel: FollowUpChannel::Email }));
    assert_eq!(outcome(&outcomes, &second), Some(&RunOutcome::Skipped { reason: "fatigue_budget" }));
    assert_eq!(w.follow_up_item(&second).await["skip_reason"].as_s().unwrap(), "fatigue_budget");
    let silent = w.customer(None, None, Consent { email: false, sms: false, research: false }).await;
    let third = w.unresolved(&silent, "2026-11-01T01:00:00Z").await;
    let outcomes = w.run("2026-11-02T03:00:00Z").await;
    assert_eq!(outcome(&outcomes, &third), Some(&RunOutcome::Skipped { reason: "no_consented_channel" }));
}

#[tokio::test]
async fn two_runs_at_once_send_one_email() {
    let w = world().await;
    let email = format!("{}@example.com", unique("buyer"));
    let customer = w.customer(Some(&email), None, Consent { email: true, sms: false, research: false }).await;
    let conv = w.unresolved(&customer, "2026-11-01T01:00:00Z").await;
    let (a, b) = tokio::join!(w.run("2026-11-02T02:00:00Z"), w.run("2026-11-02T02:00:00Z"));
    let sent =
        [outcome(&a, &conv), outcome(&b, &conv)].iter().filter(|o| matches!(o, Some(RunOutcome::Sent { .. }))).count();
    assert_eq!(sent, 1, "{a:?} {b:?}");
    assert_eq!(mails_to(&email).await.len(), 1);
}

fn rand_digits() -> u32 {
    (ulid::Ulid::new().random() % 10_000_000) as u32
}

/// A fresh mobile number SNS does not report as opted out: moto reports every number ending in
/// "99" as opted out, so a random one would fail about one run in a hundred.
fn reachable_phone() -> String {
    format!("+86138{:07}0", rand_digits())
}

#[tokio::test]
async fn a_number_sns_reports_as_opted_out_gets_no_sms() {
    let w = world().await;
    // moto's stand-in for a handset that replied STOP: the number ends in 99.
    let phone = format!("+86139{:06}99", rand_digits() % 1_000_000);
    let customer = w.customer(None, Some(&phone), Consent { email: false, sms: true, research: false }).await;
    let conv = w.unresolved(&customer, "2026-11-01T01:00:00Z").await;
    let outcomes = w.run("2026-11-02T02:00:00Z").await;
    assert_eq!(outcome(&outcomes, &conv), Some(&RunOutcome::Skipped { reason: "opted_out" }));
    assert!(sms_to(&phone).await.is_empty());
    assert_eq!(w.follow_up_item(&conv).await["skip_reason"].as_s().unwrap(), "opted_out");
}

#[tokio::test]
async fn a_failed_send_is_retried_later_and_sent_once() {
    let mut w = world().await;
    // A sender address SES has not verified: the first attempt fails.
    let unverified = format!("{}@unverified.example.com", unique("shop"));
    w.sender.from_address = unverified.clone();
    w.settings.from_address = unverified.clone();
    let email = format!("{}@example.com", unique("buyer"));
    let customer = w.customer(Some(&email), None, Consent { email: true, sms: false, research: false }).await;
    let conv = w.unresolved(&customer, "2026-11-01T01:00:00Z").await;
    let outcomes = w.run("2026-11-02T02:00:00Z").await;
    let Some(RunOutcome::Failed { retry_at: Some(retry_at) }) = outcome(&outcomes, &conv).cloned() else {
        panic!("{outcomes:?}")
    };
    assert_eq!(w.follow_up_item(&conv).await["attempts"].as_n().unwrap(), "1");
    w.sender.ses.create_email_identity().email_identity(&unverified).send().await.unwrap();
    assert_eq!(outcome(&w.run("2026-11-02T02:01:00Z").await, &conv), None, "not before the backoff");
    let later = retry_at.to_string();
    let outcomes = w.run(&later).await;
    assert_eq!(outcome(&outcomes, &conv), Some(&RunOutcome::Sent { channel: FollowUpChannel::Email }));
    assert_eq!(mails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn a_live_claim_is_left_to_its_run_and_a_dead_runs_claim_is_finished_by_the_retry() {
    use feedback::followups::FollowUpStore;
    use feedback::lease::{Lease, run_owner};
    let w = world().await;
    let (email, customer, conv) = w.emailable().await;
    let scheduled = at("2026-11-02T02:00:00Z");
    let due = w.due(&conv, scheduled).await;
    // The 02:00 run, started late, claimed it just now: its lease runs on the real clock.
    let live = Lease::take(run_owner("follow-ups", scheduled), 70);
    assert!(w.store.claim(&due, &live).await.unwrap());
    // A run scheduled a quarter of an hour later leaves it to that run.
    assert_eq!(outcome(&w.run("2026-11-02T02:15:00Z").await, &conv), Some(&RunOutcome::Busy));
    assert!(mails_to(&email).await.is_empty());

    // Another conversation's follow-up was claimed by a run that then died (two minutes ago; its
    // lease was as long as the invocation could live): the retry of that run sends it.
    let conv2 = w.unresolved(&customer, "2026-11-01T01:00:00Z").await;
    let due2 = w.due(&conv2, scheduled).await;
    let died = Lease::at(run_owner("follow-ups", scheduled), Timestamp::now() - jiff::SignedDuration::from_mins(2), 70);
    assert!(w.store.claim(&due2, &died).await.unwrap());
    let outcomes = w.run("2026-11-02T02:00:00Z").await;
    assert_eq!(outcome(&outcomes, &conv2), Some(&RunOutcome::Sent { channel: FollowUpChannel::Email }));
    assert_eq!(mails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn a_run_whose_follow_up_was_taken_over_cannot_change_it() {
    use feedback::errors::StoreError;
    use feedback::followups::FollowUpStore;
    use feedback::lease::{Lease, run_owner};
    let w = world().await;
    let (_, _, conv) = w.emailable().await;
    let scheduled = at("2026-11-02T02:00:00Z");
    let due = w.due(&conv, scheduled).await;
    let now = Timestamp::now();
    let stalled = Lease::at(run_owner("follow-ups", scheduled), now - jiff::SignedDuration::from_mins(5), 70);
    assert!(w.store.claim(&due, &stalled).await.unwrap());
    let current = Lease::take(run_owner("follow-ups", at("2026-11-02T02:15:00Z")), 70);
    assert!(w.store.claim(&due, &current).await.unwrap(), "the stalled run's lease lapsed");
    // The stalled run wakes up: none of its changes is written.
    let sent = w.store.mark_sent(&due, &stalled, FollowUpChannel::Email, "m-old", scheduled, None).await;
    assert!(matches!(sent, Err(StoreError::LeaseLost(_))), "{sent:?}");
    let skipped = w.store.skip(&due, &stalled, "rated", scheduled).await;
    assert!(matches!(skipped, Err(StoreError::LeaseLost(_))), "{skipped:?}");
    let released = w.store.release(&due, &stalled, None, "boom", scheduled).await;
    assert!(matches!(released, Err(StoreError::LeaseLost(_))), "{released:?}");
    let item = w.follow_up_item(&conv).await;
    assert_eq!(item["state"].as_s().unwrap(), "sending");
    assert_eq!(item["lease_owner"].as_s().unwrap(), &current.owner);
    // The holder's change is written.
    w.store.skip(&due, &current, "rated", scheduled).await.unwrap();
    assert_eq!(w.follow_up_item(&conv).await["state"].as_s().unwrap(), "skipped");
}
