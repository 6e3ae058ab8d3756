//! The six use cases (and closing) on the in-memory fakes: their rules and their failure paths,
//! in milliseconds. The fakes are held to the adapters by the contract suite; moto keeps the
//! adapter and end-to-end tests.

use fakes::contract::{at, closing, message, rating, submission};
use fakes::{Fault, InMemory, Outbox, PlainDigest, Sent, digest_settings, run_settings};
use feedback::analysis::Analyzer;
use feedback::analysis::triggers::{Severity, TriggerRules};
use feedback::config::WeekSettings;
use feedback::conversations::intake::{
    AlertStatus, CloseSettings, IntakeError, IntakeSettings, close_conversation, record_messages,
};
use feedback::conversations::store::{ConversationStore, FollowUpState, MessageStored};
use feedback::conversations::{MessageBatch, Role};
use feedback::followups::contacts::{Consent, ContactDetails, ContactStore};
use feedback::followups::link::{LinkForm, LinkPage, LinkPurpose, LinkSigner, RatingLink, open_link};
use feedback::followups::{FollowUpChannel, RunOutcome, run_follow_ups};
use feedback::insights::{FeedbackKind, StoredFeedback, StreamItem, UnreadableRecord, process_batch};
use feedback::ratings::{RatingStore, SubmitRatingError, Submitted, submit_rating};
use feedback::reporting::{DigestChannel, DigestError, DigestOutcome, ReportStore, run_weekly};

// Ratings --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rating_is_stored_once_and_retries_get_the_original() {
    let store = InMemory::default();
    let now = at("2026-11-18T03:00:00Z");
    let first = submit_rating(&store, submission("c-1", "u-1", 2, Some("慢")), Some("k-1".into()), now).await.unwrap();
    assert!(matches!(first, Submitted::Created(_)));
    let retry = submit_rating(&store, submission("c-1", "u-1", 2, Some("慢")), Some("k-1".into()), now).await.unwrap();
    assert_eq!(retry, Submitted::Replayed(first.rating().clone()));
    let other = submit_rating(&store, submission("c-1", "u-1", 5, None), None, now).await;
    assert!(matches!(other, Err(SubmitRatingError::AlreadyRated { .. })), "{other:?}");
    let reused = submit_rating(&store, submission("c-1", "u-1", 4, None), Some("k-1".into()), now).await;
    assert!(matches!(reused, Err(SubmitRatingError::IdempotencyKeyReused { .. })), "{reused:?}");
}

#[tokio::test]
async fn a_rating_whose_write_timed_out_is_not_stored_twice_by_the_retry() {
    let store = InMemory::default();
    store.faults.next("insert_rating", Fault::TimeoutAfter);
    let now = at("2026-11-18T03:00:00Z");
    let lost = submit_rating(&store, submission("c-1", "u-1", 3, None), Some("k".into()), now).await;
    assert!(matches!(&lost, Err(SubmitRatingError::Store(e)) if e.is_retryable()), "{lost:?}");
    let stored = store.rating_of_conversation("c-1").await.unwrap().expect("the write took effect");
    let retry = submit_rating(&store, submission("c-1", "u-1", 3, None), Some("k".into()), now).await.unwrap();
    assert_eq!(retry, Submitted::Replayed(stored), "the retry finds the first write");
}

#[tokio::test]
async fn a_throttled_store_fails_the_rating_retryably_and_stores_nothing() {
    let store = InMemory::default();
    store.faults.next("insert_rating", Fault::Throttle);
    let r = submit_rating(&store, submission("c-1", "u-1", 3, None), None, at("2026-11-18T03:00:00Z")).await;
    assert!(matches!(&r, Err(SubmitRatingError::Store(e)) if e.is_retryable()), "{r:?}");
    assert_eq!(store.rating_of_conversation("c-1").await.unwrap(), None);
}

// Conversations and triggers --------------------------------------------------------------------

fn batch(conversation_id: &str, messages: &[(&str, &str)]) -> MessageBatch {
    MessageBatch {
        conversation_id: conversation_id.into(),
        customer_id: "u-1".into(),
        messages: messages
            .iter()
            .enumerate()
            .map(|(i, (id, text))| message(id, Role::Customer, text, &format!("2026-11-18T03:00:0{i}Z")))
            .collect(),
    }
}

fn alerts(outbox: &Outbox) -> Vec<String> {
    outbox.sent().into_iter().filter_map(|s| if let Sent::Alert(a) = s { Some(a.category) } else { None }).collect()
}

const EVERY_CATEGORY: IntakeSettings = IntakeSettings { alert_min_severity: Severity::Medium };

#[tokio::test]
async fn a_complaint_alerts_staff_once_with_contacts_masked() {
    let (store, outbox, rules) = (InMemory::default(), Outbox::default(), TriggerRules::builtin());
    let settings = IntakeSettings { alert_min_severity: Severity::High };
    let b = batch("c-1", &[("m-1", "我要投诉你们，电话13812345678")]);
    let r = record_messages(&store, &outbox, rules, &settings, b.clone(), at("2026-11-18T03:00:09Z")).await.unwrap();
    assert_eq!((r.alerts.len(), r.alerts[0].status), (1, AlertStatus::Sent));
    let Some(Sent::Alert(alert)) = outbox.sent().first().cloned() else { panic!("{:?}", outbox.sent()) };
    assert!(!alert.text.contains("13812345678"), "{}", alert.text);
    let again = record_messages(&store, &outbox, rules, &settings, b, at("2026-11-18T03:00:10Z")).await.unwrap();
    assert_eq!(again.messages[0].stored, MessageStored::Duplicate);
    assert_eq!(again.alerts[0].status, AlertStatus::AlreadySent);
    assert_eq!(alerts(&outbox).len(), 1);
}

#[tokio::test]
async fn one_alert_failing_does_not_hold_up_the_others_and_the_retry_sends_only_it() {
    let (store, outbox, rules) = (InMemory::default(), Outbox::default(), TriggerRules::builtin());
    let b = batch("c-1", &[("m-1", "太不满意了"), ("m-2", "我要投诉你们")]);
    outbox.faults.next("send_alert", Fault::Throttle);
    let r = record_messages(&store, &outbox, rules, &EVERY_CATEGORY, b.clone(), at("2026-11-18T03:00:09Z")).await;
    assert!(matches!(r, Err(IntakeError::Alert(_))), "{r:?}");
    let sent = alerts(&outbox);
    assert_eq!(sent.len(), 1, "the other category was still alerted: {sent:?}");
    let failed = ["dissatisfied", "complaint"].into_iter().find(|c| !sent.iter().any(|s| s == c)).unwrap();
    assert!(store.failure_of_alert("c-1", failed).is_some_and(|f| f.contains("throttled")), "kept on the item");
    assert_eq!(store.conversation_turns("c-1", 10).await.unwrap().len(), 2, "the messages were kept");
    // The caller's retry sends the one that failed, and nothing twice.
    let retry = record_messages(&store, &outbox, rules, &EVERY_CATEGORY, b, at("2026-11-18T03:00:20Z")).await.unwrap();
    let statuses: Vec<AlertStatus> = retry.alerts.iter().map(|a| a.status).collect();
    assert!(statuses.contains(&AlertStatus::Sent) && statuses.contains(&AlertStatus::AlreadySent), "{statuses:?}");
    let mut sent = alerts(&outbox);
    sent.sort();
    assert_eq!(sent, ["complaint", "dissatisfied"]);
}

#[tokio::test]
async fn a_store_that_fails_to_record_messages_fails_the_call_and_alerts_no_one() {
    let (store, outbox, rules) = (InMemory::default(), Outbox::default(), TriggerRules::builtin());
    store.faults.next("insert_messages", Fault::Throttle);
    let r = record_messages(
        &store,
        &outbox,
        rules,
        &EVERY_CATEGORY,
        batch("c-1", &[("m-1", "我要投诉")]),
        at("2026-11-18T03:00:09Z"),
    )
    .await;
    assert!(matches!(&r, Err(IntakeError::Store(e)) if e.is_retryable()), "{r:?}");
    assert!(outbox.sent().is_empty());
}

#[tokio::test]
async fn another_customers_conversation_is_refused() {
    let (store, outbox, rules) = (InMemory::default(), Outbox::default(), TriggerRules::builtin());
    record_messages(
        &store,
        &outbox,
        rules,
        &EVERY_CATEGORY,
        batch("c-1", &[("m-1", "你好")]),
        at("2026-11-18T03:00:09Z"),
    )
    .await
    .unwrap();
    let mut theirs = batch("c-1", &[("m-2", "你好")]);
    theirs.customer_id = "u-2".into();
    let r = record_messages(&store, &outbox, rules, &EVERY_CATEGORY, theirs, at("2026-11-18T03:00:10Z")).await;
    assert!(matches!(r, Err(IntakeError::OtherCustomer { .. })), "{r:?}");
}

#[tokio::test]
async fn an_unresolved_close_queues_one_follow_up_and_counts_its_estimate_once() {
    let (store, outbox, rules) = (InMemory::default(), Outbox::default(), TriggerRules::builtin());
    let b = batch("c-1", &[("m-1", "快递一周还没到，太慢了"), ("m-2", "到底什么时候到？")]);
    record_messages(&store, &outbox, rules, &EVERY_CATEGORY, b, at("2026-11-18T03:00:09Z")).await.unwrap();
    let settings = CloseSettings { follow_up_delay_hours: 24 };
    let c = closing("c-1", Some("u-1"), false, "2026-11-18T04:00:00Z");
    let closed = close_conversation(&store, &settings, c.clone(), at("2026-11-18T04:00:00Z")).await.unwrap();
    assert_eq!(closed.follow_up.state, FollowUpState::Scheduled);
    assert_eq!(closed.follow_up.due_at, Some(at("2026-11-19T04:00:00Z")));
    let estimate = closed.satisfaction.expect("the customer wrote something");
    assert!(estimate.expected_stars < 3.0, "{estimate:?}");
    let again = close_conversation(&store, &settings, c, at("2026-11-18T04:00:00Z")).await.unwrap();
    assert_eq!(again.follow_up.state, FollowUpState::AlreadyScheduled);
    let week = store.week_figures("2026-W47").await.unwrap();
    assert_eq!(week.all.estimated, 1, "counted once");
    let theirs = closing("c-1", Some("u-2"), false, "2026-11-18T05:00:00Z");
    assert!(matches!(
        close_conversation(&store, &settings, theirs, at("2026-11-18T05:00:00Z")).await,
        Err(IntakeError::OtherCustomer { .. })
    ));
}

#[tokio::test]
async fn a_close_reported_a_month_late_queues_no_follow_up() {
    let store = InMemory::default();
    let settings = CloseSettings { follow_up_delay_hours: 24 };
    let c = closing("c-1", Some("u-1"), false, "2026-10-01T04:00:00Z");
    let closed = close_conversation(&store, &settings, c, at("2026-11-18T04:00:00Z")).await.unwrap();
    assert_eq!((closed.follow_up.state, closed.follow_up.due_at), (FollowUpState::TooLate, None));
    assert_eq!(store.follow_up_state("c-1"), None);
    let recent = closing("c-2", Some("u-1"), false, "2026-11-13T04:00:00Z");
    let closed = close_conversation(&store, &settings, recent, at("2026-11-18T04:00:00Z")).await.unwrap();
    assert_eq!(closed.follow_up.state, FollowUpState::Scheduled, "five days late: followed up at the next run");
}

// Follow-ups ------------------------------------------------------------------------------------

fn signer() -> LinkSigner {
    LinkSigner::new(b"test key test key test key test key!").unwrap()
}

/// A customer with e-mail consent whose conversation closed unresolved on Tuesday 18 Nov, 11:00
/// in Shanghai: due Wednesday 11:00 (outside quiet hours).
async fn queued(store: &InMemory, conversation_id: &str, customer_id: &str) {
    store
        .put_contact(&ContactDetails {
            customer_id: customer_id.into(),
            email: Some(format!("{customer_id}@example.com")),
            phone: None,
            consent: Consent { email: true, sms: false, research: false },
            time_zone: "Asia/Shanghai".into(),
            locale: "zh-CN".into(),
            updated_at: at("2026-11-01T00:00:00Z"),
        })
        .await
        .unwrap();
    let c = closing(conversation_id, Some(customer_id), false, "2026-11-18T03:00:00Z");
    store.close(&c, None, Some(at("2026-11-19T03:00:00Z"))).await.unwrap();
}

/// The text part of a raw follow-up e-mail, decoded.
fn decoded_text(raw: &str) -> String {
    fakes::mail::read(raw).unwrap().text
}

/// A value that lives as long as the test (for closures that hand out references).
fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// A link page's form as the HTTP glue decodes it.
fn form(stars: &str, comment: Option<&str>) -> LinkForm {
    LinkForm { stars: Some(stars.to_owned()), comment: comment.map(str::to_owned) }
}

fn emails_to(outbox: &Outbox, to: &str) -> usize {
    outbox.sent().iter().filter(|s| matches!(s, Sent::Email { to: t, .. } if t.iter().any(|t| t == to))).count()
}

#[tokio::test]
async fn a_due_follow_up_is_mailed_once_then_reminded_once() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    let s = run_settings();
    assert!(run_follow_ups(&store, &outbox, &signer(), &s, at("2026-11-19T02:59:00Z")).await.unwrap().is_empty());
    let run = run_follow_ups(&store, &outbox, &signer(), &s, at("2026-11-19T03:00:00Z")).await.unwrap();
    assert_eq!(run, [("c-1".to_owned(), RunOutcome::Sent { channel: FollowUpChannel::Email })]);
    assert!(run_follow_ups(&store, &outbox, &signer(), &s, at("2026-11-19T03:15:00Z")).await.unwrap().is_empty());
    assert_eq!(emails_to(&outbox, "u-1@example.com"), 1);
    let reminder_at =
        at("2026-11-19T03:00:00Z") + jiff::SignedDuration::from_hours(i64::from(s.policy.reminder_after_hours));
    let run = run_follow_ups(&store, &outbox, &signer(), &s, reminder_at).await.unwrap();
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!(emails_to(&outbox, "u-1@example.com"), 2);
    assert_eq!(store.follow_up_state("c-1"), Some("sent"));
}

#[tokio::test]
async fn one_follow_ups_storage_failure_does_not_stop_the_others_and_the_retry_sends_it() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    queued(&store, "c-2", "u-2").await;
    store.faults.next("customer_facts", Fault::Throttle);
    let s = run_settings();
    let now = at("2026-11-19T03:00:00Z");
    let run = run_follow_ups(&store, &outbox, &signer(), &s, now).await;
    assert!(matches!(&run, Err(e) if e.is_retryable()), "the run fails for the scheduler to retry: {run:?}");
    assert_eq!(emails_to(&outbox, "u-2@example.com"), 1, "the other follow-up was sent");
    assert_eq!(store.follow_up_state("c-1"), Some("due"), "released at once, not left claimed");
    assert!(store.failure_of_follow_up("c-1").is_some_and(|f| f.contains("throttled")));
    let retry = run_follow_ups(&store, &outbox, &signer(), &s, now).await.unwrap();
    assert_eq!(retry, [("c-1".to_owned(), RunOutcome::Sent { channel: FollowUpChannel::Email })]);
    assert_eq!((emails_to(&outbox, "u-1@example.com"), emails_to(&outbox, "u-2@example.com")), (1, 1));
}

#[tokio::test]
async fn a_failed_send_is_kept_on_the_follow_up_and_retried_after_the_backoff() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    outbox.faults.next("send_email", Fault::Throttle);
    let s = run_settings();
    let run = run_follow_ups(&store, &outbox, &signer(), &s, at("2026-11-19T03:00:00Z")).await.unwrap();
    let [(_, RunOutcome::Failed { retry_at: Some(retry_at) })] = run.as_slice() else { panic!("{run:?}") };
    assert!(store.failure_of_follow_up("c-1").is_some_and(|f| f.contains("throttled")));
    assert!(run_follow_ups(&store, &outbox, &signer(), &s, at("2026-11-19T03:01:00Z")).await.unwrap().is_empty());
    let run = run_follow_ups(&store, &outbox, &signer(), &s, *retry_at).await.unwrap();
    assert_eq!(run, [("c-1".to_owned(), RunOutcome::Sent { channel: FollowUpChannel::Email })]);
    assert_eq!(emails_to(&outbox, "u-1@example.com"), 1);
}

#[tokio::test]
async fn a_rated_conversation_and_an_opted_out_customer_get_no_follow_up() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    queued(&store, "c-2", "u-2").await;
    store.insert_rating(&rating("c-1", "u-1", 4, None, "2026-11-18T08:00:00Z")).await.unwrap();
    feedback::followups::link::LinkStore::opt_out(&store, "u-2", at("2026-11-18T09:00:00Z")).await.unwrap();
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), at("2026-11-19T03:00:00Z")).await.unwrap();
    assert!(run.iter().all(|(_, o)| matches!(o, RunOutcome::Skipped { .. })), "{run:?}");
    assert!(outbox.sent().is_empty());
}

// The weekly digest -----------------------------------------------------------------------------

fn digests(outbox: &Outbox) -> (usize, usize) {
    let sent = outbox.sent();
    (
        sent.iter().filter(|s| matches!(s, Sent::Email { .. })).count(),
        sent.iter().filter(|s| matches!(s, Sent::Topic { .. })).count(),
    )
}

const MONDAY: &str = "2026-11-23T01:00:00Z";

#[tokio::test]
async fn the_monday_run_sends_each_digest_once() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    let run = run_weekly(&store, &outbox, &digest_settings(), at(MONDAY), &PlainDigest).await.unwrap();
    assert_eq!(run.week, "2026-W47");
    assert!(run.report_created && run.empty);
    assert!(matches!(run.email, DigestOutcome::Sent { .. }) && matches!(run.staff_topic, DigestOutcome::Sent { .. }));
    let again = run_weekly(&store, &outbox, &digest_settings(), at(MONDAY), &PlainDigest).await.unwrap();
    assert_eq!(
        (again.email, again.staff_topic, again.report_created),
        (DigestOutcome::AlreadySent, DigestOutcome::AlreadySent, false)
    );
    assert_eq!(digests(&outbox), (1, 1));
}

#[tokio::test]
async fn a_failed_email_does_not_hold_up_the_topic_and_the_retry_sends_only_the_email() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    outbox.faults.next("send_email", Fault::Fail);
    let r = run_weekly(&store, &outbox, &digest_settings(), at(MONDAY), &PlainDigest).await;
    assert!(matches!(r, Err(DigestError::Notify(_))), "{r:?}");
    assert_eq!(digests(&outbox), (0, 1));
    assert!(store.failure_of_digest("2026-W47", DigestChannel::Email).is_some());
    let retry = run_weekly(&store, &outbox, &digest_settings(), at(MONDAY), &PlainDigest).await.unwrap();
    assert!(matches!(retry.email, DigestOutcome::Sent { .. }));
    assert_eq!(retry.staff_topic, DigestOutcome::AlreadySent);
    assert_eq!(digests(&outbox), (1, 1));
}

#[tokio::test]
async fn a_store_failure_before_the_report_sends_nothing() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    store.faults.next("save_report", Fault::Throttle);
    let r = run_weekly(&store, &outbox, &digest_settings(), at(MONDAY), &PlainDigest).await;
    assert!(matches!(&r, Err(DigestError::Store(e)) if e.is_retryable()), "{r:?}");
    assert!(outbox.sent().is_empty());
    assert!(store.report("2026-W47").await.unwrap().is_none());
}

// The analysis of the stream --------------------------------------------------------------------

async fn stored_messages(store: &InMemory, texts: &[&str]) -> Vec<StreamItem> {
    let b =
        batch("c-1", &texts.iter().enumerate().map(|(i, t)| (["m-0", "m-1", "m-2", "m-3"][i], *t)).collect::<Vec<_>>());
    store
        .insert_messages(
            "c-1",
            &b.messages.iter().map(|m| (m.clone(), feedback::analysis::triggers::Trigger::NONE)).collect::<Vec<_>>(),
            at("2026-11-18T03:00:09Z"),
        )
        .await
        .unwrap();
    b.messages
        .iter()
        .enumerate()
        .map(|(i, m)| StreamItem::Feedback {
            sequence: format!("seq-{i}"),
            item: StoredFeedback {
                pk: "CONV#c-1".into(),
                sk: format!("MSG#{}", m.message_id),
                kind: FeedbackKind::Message { message_id: m.message_id.clone() },
                conversation_id: "c-1".into(),
                customer_id: "u-1".into(),
                text: Some(m.text.clone()),
                at: m.sent_at,
            },
        })
        .collect()
}

const COMPLAINTS: [&str; 3] = ["快递一周还没到，太慢了", "客服态度太差了", "发票开错了还不给改"];

#[tokio::test]
async fn a_batch_is_counted_once_however_often_it_is_delivered() {
    let store = InMemory::default();
    let records = stored_messages(&store, &COMPLAINTS).await;
    let tz = WeekSettings::default().shop_time_zone;
    let mut analyzer = Analyzer::new();
    let first = process_batch(&store, &mut analyzer, &tz, records.clone()).await;
    assert_eq!((first.counted, first.failed_from.as_deref()), (3, None), "{first:?}");
    let again = process_batch(&store, &mut analyzer, &tz, records).await;
    assert_eq!((again.counted, again.already_applied), (0, 3));
    assert_eq!(store.week_figures("2026-W47").await.unwrap().all.items, 3);
}

#[tokio::test]
async fn a_failure_stops_the_batch_at_that_record_and_the_redelivery_finishes_it() {
    let store = InMemory::default();
    let records = stored_messages(&store, &COMPLAINTS).await;
    let tz = WeekSettings::default().shop_time_zone;
    let mut analyzer = Analyzer::new();
    store.faults.after("apply", 1, Fault::Throttle);
    let first = process_batch(&store, &mut analyzer, &tz, records.clone()).await;
    assert_eq!((first.counted, first.failed_from.as_deref()), (1, Some("seq-1")), "{first:?}");
    // The stream resumes from the failed record.
    let rest = process_batch(&store, &mut analyzer, &tz, records[1..].to_vec()).await;
    assert_eq!((rest.counted, rest.failed_from), (2, None));
    assert_eq!(store.week_figures("2026-W47").await.unwrap().all.items, 3);
}

#[tokio::test]
async fn a_write_that_took_effect_but_timed_out_is_not_counted_twice() {
    let store = InMemory::default();
    let records = stored_messages(&store, &COMPLAINTS).await;
    let tz = WeekSettings::default().shop_time_zone;
    let mut analyzer = Analyzer::new();
    store.faults.after("apply", 1, Fault::TimeoutAfter);
    let first = process_batch(&store, &mut analyzer, &tz, records.clone()).await;
    assert_eq!((first.counted, first.failed_from.as_deref()), (1, Some("seq-1")), "{first:?}");
    let rest = process_batch(&store, &mut analyzer, &tz, records[1..].to_vec()).await;
    assert_eq!((rest.counted, rest.already_applied), (1, 1), "{rest:?}");
    assert_eq!(store.week_figures("2026-W47").await.unwrap().all.items, 3);
}

#[tokio::test]
async fn an_unreadable_record_stops_the_batch_where_it_is() {
    let store = InMemory::default();
    let mut records = stored_messages(&store, &COMPLAINTS).await;
    records[1] = StreamItem::Unreadable(UnreadableRecord { sequence: "seq-1".into(), why: "no text".into() });
    let tz = WeekSettings::default().shop_time_zone;
    let outcome = process_batch(&store, &mut Analyzer::new(), &tz, records).await;
    assert_eq!((outcome.counted, outcome.unreadable, outcome.failed_from.as_deref()), (1, 1, Some("seq-1")));
}

#[tokio::test]
async fn a_failed_context_read_stops_the_batch_before_that_record_is_analysed() {
    let store = InMemory::default();
    let records = stored_messages(&store, &COMPLAINTS).await;
    let tz = WeekSettings::default().shop_time_zone;
    store.faults.next("earlier", Fault::Throttle);
    let outcome = process_batch(&store, &mut Analyzer::new(), &tz, records).await;
    assert_eq!((outcome.counted, outcome.failed_from.as_deref()), (0, Some("seq-0")), "{outcome:?}");
    assert_eq!(store.week_figures("2026-W47").await.unwrap().all.items, 0);
}

// Follow-up links -------------------------------------------------------------------------------

fn link(conversation_id: &str, expires: &str) -> String {
    signer().sign(&RatingLink { conversation_id: conversation_id.into(), expires_at: at(expires), nonce: "n-1".into() })
}

fn unsubscribe_link(conversation_id: &str, expires: &str) -> String {
    let link = RatingLink { conversation_id: conversation_id.into(), expires_at: at(expires), nonce: "n-1".into() };
    signer().sign_for(LinkPurpose::Unsubscribe, &link)
}

#[tokio::test]
async fn a_link_rates_once_through_the_follow_up_and_says_so() {
    let store = InMemory::default();
    queued(&store, "c-1", "u-1").await;
    let (token, now, signer) = (link("c-1", "2026-12-01T00:00:00Z"), at("2026-11-20T00:00:00Z"), signer());
    let (nine, two, five) = (form("9", None), form("2", Some("太慢")), form("5", None));
    let (nine, two, five, empty) = (leak(nine), leak(two), leak(five), leak(LinkForm::default()));
    let open = |form: Option<&'static LinkForm>| open_link(&signer, &store, &store, false, &token, form, now);
    assert_eq!(open(None).await.unwrap().0, LinkPage::RatingForm);
    assert_eq!(open(Some(nine)).await.unwrap().0, LinkPage::BadForm);
    assert_eq!(open(Some(empty)).await.unwrap().0, LinkPage::BadForm);
    assert_eq!(open(Some(two)).await.unwrap().0, LinkPage::Thanks);
    let stored = store.rating_of_conversation("c-1").await.unwrap().unwrap();
    assert_eq!((stored.submission.stars, stored.submission.comment.as_deref()), (2, Some("太慢")));
    assert!(stored.submission.via_follow_up, "an answer to the follow-up, as a typed field");
    assert_eq!(open(Some(two)).await.unwrap().0, LinkPage::Thanks, "the same form again");
    assert_eq!(open(Some(five)).await.unwrap().0, LinkPage::AlreadyRated);
    assert_eq!(open(None).await.unwrap().0, LinkPage::AlreadyRated);
}

#[tokio::test]
async fn links_that_expired_were_forged_or_lead_nowhere_rate_nothing() {
    let store = InMemory::default();
    queued(&store, "c-1", "u-1").await;
    let now = at("2026-11-20T00:00:00Z");
    let page = |token: String| {
        let store = store.clone();
        async move { open_link(&signer(), &store, &store, false, &token, Some(&form("1", None)), now).await.unwrap().0 }
    };
    assert_eq!(page(link("c-1", "2026-11-19T00:00:00Z")).await, LinkPage::Expired);
    let forged = link("c-1", "2026-12-01T00:00:00Z").replace('.', ".x");
    assert_eq!(page(forged).await, LinkPage::Invalid);
    assert_eq!(page(link("c-none", "2026-12-01T00:00:00Z")).await, LinkPage::Invalid, "no follow-up was sent for it");
    assert_eq!(store.rating_of_conversation("c-1").await.unwrap(), None);
}

#[tokio::test]
async fn the_unsubscribe_link_opts_the_customer_out_of_every_channel() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    let (token, now) = (unsubscribe_link("c-1", "2027-12-01T00:00:00Z"), at("2026-11-18T05:00:00Z"));
    let page = open_link(&signer(), &store, &store, true, &token, None, now).await.unwrap().0;
    let rating_token = link("c-1", "2026-12-01T00:00:00Z");
    let misused =
        open_link(&signer(), &store, &store, true, &rating_token, Some(&LinkForm::default()), now).await.unwrap().0;
    assert_eq!(misused, LinkPage::Invalid, "a rating token never unsubscribes");
    assert_eq!(page, LinkPage::UnsubscribeForm, "a GET (a mail scanner) changes nothing");
    let page = open_link(&signer(), &store, &store, true, &token, Some(&LinkForm::default()), now).await.unwrap().0;
    assert_eq!(page, LinkPage::Unsubscribed);
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), at("2026-11-19T03:00:00Z")).await.unwrap();
    assert_eq!(run, [("c-1".to_owned(), RunOutcome::Skipped { reason: "opted_out" })]);
}

#[tokio::test]
async fn the_unsubscribe_link_in_a_follow_up_works_for_more_than_a_year_the_rating_link_for_two_weeks() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    let sent_at = at("2026-11-19T03:00:00Z");
    run_follow_ups(&store, &outbox, &signer(), &run_settings(), sent_at).await.unwrap();
    let Some(Sent::Email { raw, .. }) = outbox.sent().into_iter().next() else { panic!("{:?}", outbox.sent()) };
    let after = |text: &str, path: &str| {
        text.split(path).nth(1).unwrap().split(['>', '\r', '\n', ' ']).next().unwrap().to_owned()
    };
    let (rate, unsubscribe) = (after(&decoded_text(&raw), "/r/"), after(&raw, "/u/"));
    assert_ne!(rate, unsubscribe, "each link its own token");
    let misused =
        open_link(&signer(), &store, &store, false, &unsubscribe, Some(&form("1", None)), sent_at).await.unwrap().0;
    assert_eq!(misused, LinkPage::Invalid, "an unsubscribe token never rates");
    let later = sent_at + jiff::SignedDuration::from_hours(24 * 366);
    let rate_page = open_link(&signer(), &store, &store, false, &rate, None, later).await.unwrap().0;
    assert_eq!(rate_page, LinkPage::Expired);
    let one_click = LinkForm::default();
    let page = open_link(&signer(), &store, &store, true, &unsubscribe, Some(&one_click), later).await.unwrap().0;
    assert_eq!(page, LinkPage::Unsubscribed, "a year later");
    let texts = outbox.sent();
    assert!(texts.iter().all(|s| !matches!(s, Sent::Sms { text, .. } if text.contains("回复T"))));
}

#[tokio::test]
async fn a_store_failure_behind_a_link_is_an_error_not_a_page() {
    let store = InMemory::default();
    queued(&store, "c-1", "u-1").await;
    store.faults.next("follow_up_of", Fault::Throttle);
    let r = open_link(
        &signer(),
        &store,
        &store,
        false,
        &link("c-1", "2026-12-01T00:00:00Z"),
        None,
        at("2026-11-20T00:00:00Z"),
    )
    .await;
    assert!(matches!(&r, Err(e) if e.is_retryable()), "{r:?}");
}

fn order(
    id: &str,
    kind: feedback::customers::orders::OrderEventKind,
    customer: &str,
    when: &str,
) -> feedback::customers::orders::OrderEvent {
    feedback::customers::orders::OrderEvent {
        event_id: id.into(),
        kind,
        order_id: "o-1".into(),
        customer_id: customer.into(),
        at: at(when),
        total_minor: Some(9_900),
        currency: Some("CNY".into()),
        items: Vec::new(),
        promised_delivery_at: None,
        carrier: None,
    }
}

/// An open refund holds the rating request (checked again daily); once the refund is done it
/// goes out; held for longer than the limit, it is dropped instead.
#[tokio::test]
async fn an_open_refund_holds_the_follow_up_until_it_completes_and_not_for_ever() {
    use feedback::customers::orders::OrderEventKind::{RefundCompleted, RefundRequested};
    use feedback::customers::record_order_events;
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    let refund = order("e-1", RefundRequested, "u-1", "2026-11-18T05:00:00Z");
    record_order_events(&store, &[refund], at("2026-11-18T05:00:00Z")).await.unwrap();
    let day1 = at("2026-11-19T03:00:00Z");
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), day1).await.unwrap();
    assert_eq!(
        run,
        [(
            "c-1".to_owned(),
            RunOutcome::Held { until: day1 + jiff::SignedDuration::from_hours(24), reason: "open_refund" }
        )]
    );
    assert!(outbox.sent().is_empty(), "nothing asked while the refund is open");
    let day2 = day1 + jiff::SignedDuration::from_hours(24);
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), day2).await.unwrap();
    assert!(matches!(run[..], [(_, RunOutcome::Held { .. })]), "{run:?}");
    let done = order("e-2", RefundCompleted, "u-1", "2026-11-20T06:00:00Z");
    record_order_events(&store, &[done], at("2026-11-20T06:00:00Z")).await.unwrap();
    let day3 = day2 + jiff::SignedDuration::from_hours(24);
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), day3).await.unwrap();
    assert_eq!(run, [("c-1".to_owned(), RunOutcome::Sent { channel: FollowUpChannel::Email })]);
    assert_eq!(emails_to(&outbox, "u-1@example.com"), 1);

    // Another customer's refund never completes: after HOLD_MAX_DAYS the request is dropped.
    queued(&store, "c-2", "u-2").await;
    record_order_events(&store, &[order("e-3", RefundRequested, "u-2", "2026-11-18T05:00:00Z")], day1).await.unwrap();
    let mut when = day1;
    let outcome = loop {
        let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), when).await.unwrap();
        match run.into_iter().find(|(c, _)| c == "c-2").map(|(_, o)| o) {
            Some(RunOutcome::Held { until, .. }) => when = until,
            Some(other) => break other,
            None => panic!("c-2 was not due at {when}"),
        }
    };
    assert_eq!(outcome, RunOutcome::Skipped { reason: "held_too_long" });
    assert!(when.duration_since(day1) > jiff::SignedDuration::from_hours(24 * feedback::followups::HOLD_MAX_DAYS));
    assert_eq!(emails_to(&outbox, "u-2@example.com"), 0);
}

/// A delayed order gets one apology before the customer asks, under the follow-up's rules: the
/// second delay within the fatigue budget does not send another, and a rating request due the
/// same week waits its turn too (one budget).
#[tokio::test]
async fn a_delayed_order_gets_one_apology_and_a_second_delay_within_the_fatigue_window_none() {
    use feedback::customers::orders::OrderEventKind::{Delayed, Shipped};
    use feedback::customers::record_order_events;
    let (store, outbox) = (InMemory::default(), Outbox::default());
    queued(&store, "c-1", "u-1").await;
    let mut shipped = order("e-1", Shipped, "u-1", "2026-11-17T02:00:00Z");
    shipped.promised_delivery_at = Some(at("2026-11-19T10:00:00Z"));
    let mut delayed = order("e-2", Delayed, "u-1", "2026-11-18T01:00:00Z");
    delayed.promised_delivery_at = Some(at("2026-11-21T10:00:00Z"));
    record_order_events(&store, &[shipped, delayed], at("2026-11-18T01:00:00Z")).await.unwrap();
    // 09:05 in Shanghai: the apology goes out; the rating request of c-1 (due 11:00 local) then
    // finds the budget spent.
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), at("2026-11-19T03:00:00Z")).await.unwrap();
    let outcomes: Vec<&RunOutcome> = run.iter().map(|(_, o)| o).collect();
    assert!(outcomes.contains(&&RunOutcome::Sent { channel: FollowUpChannel::Email }), "{run:?}");
    assert!(outcomes.contains(&&RunOutcome::Skipped { reason: "fatigue_budget" }), "{run:?}");
    let sent = outbox.sent();
    let Some(Sent::Email { raw, .. }) = sent.first() else { panic!("{sent:?}") };
    let mail = fakes::mail::read(raw).unwrap();
    assert!(mail.subject.contains("o-1") && mail.text.contains("2026-11-21"), "{}\n{}", mail.subject, mail.text);
    assert!(!mail.text.contains("/r/"), "an apology asks for no rating");
    assert!(mail.list_unsubscribe.is_some(), "and can be unsubscribed from");

    let again = order("e-3", Delayed, "u-1", "2026-11-20T01:00:00Z");
    record_order_events(&store, &[again], at("2026-11-20T01:00:00Z")).await.unwrap();
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), at("2026-11-20T03:00:00Z")).await.unwrap();
    // The check queued with the first promise finds the order not late against the new one.
    assert_eq!(
        run.iter().map(|(_, o)| o).collect::<Vec<_>>(),
        [&RunOutcome::Skipped { reason: "not_late" }, &RunOutcome::Skipped { reason: "fatigue_budget" }]
    );
    assert_eq!(emails_to(&outbox, "u-1@example.com"), 1, "one apology, nothing else that week");
    // A replayed event queues nothing new.
    let replay = order("e-3", Delayed, "u-1", "2026-11-20T01:00:00Z");
    record_order_events(&store, &[replay], at("2026-11-20T02:00:00Z")).await.unwrap();
    assert!(
        run_follow_ups(&store, &outbox, &signer(), &run_settings(), at("2026-11-20T04:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// An order that misses its promise gets an apology without any `delayed` event: a check queued
/// with the promise, sent only if the parcel has not come by then (plus the grace hours).
#[tokio::test]
async fn an_order_late_against_its_promise_gets_an_apology_and_one_delivered_in_time_none() {
    use feedback::customers::orders::OrderEventKind::{Delivered, Shipped};
    use feedback::customers::record_order_events;
    let (store, outbox) = (InMemory::default(), Outbox::default());
    for customer in ["u-late", "u-on-time"] {
        store
            .put_contact(&ContactDetails {
                customer_id: customer.into(),
                email: Some(format!("{customer}@example.com")),
                phone: None,
                consent: Consent { email: true, sms: false, research: false },
                time_zone: "Asia/Shanghai".into(),
                locale: "en".into(),
                updated_at: at("2026-11-01T00:00:00Z"),
            })
            .await
            .unwrap();
        let mut shipped = order(&format!("{customer}-1"), Shipped, customer, "2026-11-17T02:00:00Z");
        shipped.promised_delivery_at = Some(at("2026-11-19T00:00:00Z"));
        record_order_events(&store, &[shipped], at("2026-11-17T02:00:00Z")).await.unwrap();
    }
    let delivered = order("u-on-time-2", Delivered, "u-on-time", "2026-11-18T09:00:00Z");
    record_order_events(&store, &[delivered], at("2026-11-18T09:00:00Z")).await.unwrap();
    assert!(
        run_follow_ups(&store, &outbox, &signer(), &run_settings(), at("2026-11-19T05:00:00Z"))
            .await
            .unwrap()
            .is_empty(),
        "not before the grace hours"
    );
    let mut run =
        run_follow_ups(&store, &outbox, &signer(), &run_settings(), at("2026-11-19T06:30:00Z")).await.unwrap();
    run.sort_by(|a, b| a.0.cmp(&b.0));
    let outcomes: Vec<&RunOutcome> = run.iter().map(|(_, o)| o).collect();
    assert_eq!(
        outcomes,
        [&RunOutcome::Sent { channel: FollowUpChannel::Email }, &RunOutcome::Skipped { reason: "not_late" }],
        "{run:?}"
    );
    assert_eq!((emails_to(&outbox, "u-late@example.com"), emails_to(&outbox, "u-on-time@example.com")), (1, 0));
}

// Recovery offers ------------------------------------------------------------------------------

/// A customer with an order late against its promise (shipped, promised two days ago).
async fn late_order_customer(store: &InMemory, customer: &str, total_minor: i64) {
    use feedback::customers::orders::OrderEventKind::Shipped;
    let mut shipped = order(&format!("{customer}-e1"), Shipped, customer, "2026-11-20T02:00:00Z");
    shipped.promised_delivery_at = Some(at("2026-11-22T02:00:00Z"));
    shipped.total_minor = Some(total_minor);
    feedback::customers::record_order_events(store, &[shipped], at("2026-11-20T02:00:00Z")).await.unwrap();
}

fn strategy_settings(
    offers: feedback::customers::offers::OfferSettings,
) -> feedback::customers::strategy::StrategySettings {
    feedback::customers::strategy::StrategySettings { offers, ..Default::default() }
}

/// A message batch asking for the strategy (offers may be decided), as of `now`.
fn ask<'a>(
    conversation_id: &'a str,
    customer_id: &'a str,
    raised: &'a [(&'a str, Severity)],
    now: feedback::Timestamp,
) -> feedback::customers::strategy::Asked<'a> {
    feedback::customers::strategy::Asked {
        conversation_id,
        customer_id: Some(customer_id),
        raised,
        at: now,
        now,
        decide_offer: true,
    }
}

fn no_holdout() -> feedback::customers::offers::OfferSettings {
    feedback::customers::offers::OfferSettings { holdout_percent: 0, ..Default::default() }
}

/// The rules call for making good a late order: the first unhappy message gets a coupon the bot
/// may make, every later message of the conversation the same one (one decision, reserved once);
/// a VIP's severe complaint calls for more than the bot may give, so an agent gets it.
#[tokio::test]
async fn an_unhappy_customer_with_a_late_order_gets_one_offer_and_a_large_one_goes_to_an_agent() {
    use feedback::customers::offers::{OfferBy, OfferKind, OfferState};
    use feedback::customers::strategy::{Route, strategy_for};
    let store = InMemory::default();
    let now = at("2026-11-24T04:00:00Z");
    let settings = strategy_settings(no_holdout());
    late_order_customer(&store, "u-1", 9_900).await;
    let unhappy: &[(&str, Severity)] = &[("not_resolved", Severity::Medium)];
    let first = strategy_for(&store, &store, &settings, ask("c-1", "u-1", unhappy, now)).await;
    let offer = first.offer.clone().expect("an offer");
    assert_eq!(
        (offer.kind, offer.value, offer.by, offer.state),
        (OfferKind::Coupon, 20.0, OfferBy::Bot, OfferState::Suggested)
    );
    assert!(first.reasons.iter().any(|r| r.rule == "offer" && r.why.contains("CNY 20.00")), "{:?}", first.reasons);
    let later = strategy_for(&store, &store, &settings, ask("c-1", "u-1", unhappy, now)).await;
    assert_eq!(later.offer, first.offer, "the same decision");
    let week = store.week_figures("2026-W48").await.unwrap().all.offers;
    assert_eq!(week.suggested, 1, "decided and counted once");

    // A VIP (a large order) with a severe complaint: 100 is above the bot's 50.
    late_order_customer(&store, "u-vip", 900_000).await;
    let severe: &[(&str, Severity)] = &[("complaint", Severity::High)];
    let vip = strategy_for(&store, &store, &settings, ask("c-2", "u-vip", severe, now)).await;
    let offer = vip.offer.expect("an offer");
    assert_eq!((offer.value, offer.by), (100.0, OfferBy::Agent));
    assert!(vip.route >= Route::Agent);
    // A calm customer gets none.
    let calm = strategy_for(&store, &store, &settings, ask("c-3", "u-1", &[], now)).await;
    assert_eq!(calm.offer, None);
}

/// The guard rails: a customer gets one offer in 90 days, even from two conversations at once,
/// and gets it back if it was not made; the held-out share gets none and is the comparison; a
/// spent budget stops the next one (not a comparison: late in a week is not random); a GET shows
/// a decision but never makes one; an old conversation gets none.
#[tokio::test]
async fn offers_stop_at_the_customer_cap_the_holdout_and_the_weekly_budget() {
    use feedback::customers::offers::{OfferReport, OfferSettings, report_offer};
    use feedback::customers::strategy::{Asked, strategy_for};
    let store = InMemory::default();
    let now = at("2026-11-24T04:00:00Z");
    let unhappy: &[(&str, Severity)] = &[("dissatisfied", Severity::Medium)];
    for c in ["u-1", "u-2", "u-3", "u-4"] {
        late_order_customer(&store, c, 9_900).await;
    }
    let open = strategy_settings(no_holdout());
    // A read never decides.
    let read = Asked { decide_offer: false, ..ask("c-a", "u-2", unhappy, now) };
    let shown = strategy_for(&store, &store, &open, read).await;
    assert!(shown.offer.is_none() && shown.reasons.iter().any(|r| r.why.contains("no offer decided yet")));
    assert!(strategy_for(&store, &store, &open, ask("c-a", "u-2", unhappy, now)).await.offer.is_some());
    let again = strategy_for(&store, &store, &open, ask("c-b", "u-2", unhappy, now)).await;
    assert_eq!(again.offer, None, "a second conversation of the customer: the cap");
    assert!(again.reasons.iter().any(|r| r.why.contains("90 days")), "{:?}", again.reasons);
    report_offer(&store, "c-a", OfferReport { made: false, accepted: None }, now).await.unwrap();
    let after = strategy_for(&store, &store, &open, ask("c-c", "u-2", unhappy, now)).await;
    assert!(after.offer.is_some(), "the offer not made gave the customer's slot back");
    let shown =
        strategy_for(&store, &store, &open, Asked { decide_offer: false, ..ask("c-a", "u-2", unhappy, now) }).await;
    assert_eq!(shown.offer, None, "an offer not made is not offered again");

    let all_held = strategy_settings(OfferSettings { holdout_percent: 100, ..Default::default() });
    let held = strategy_for(&store, &store, &all_held, ask("c-h", "u-1", unhappy, now)).await;
    assert_eq!(held.offer, None);
    assert!(held.reasons.iter().any(|r| r.why.contains("held-out")), "{:?}", held.reasons);

    // Next week, a budget of 30: the first 20 fits, the second does not.
    let next_week = now + jiff::SignedDuration::from_hours(24 * 7);
    let small =
        strategy_settings(OfferSettings { holdout_percent: 0, weekly_budget_minor: 3_000, ..Default::default() });
    assert!(strategy_for(&store, &store, &small, ask("c-b1", "u-3", unhappy, next_week)).await.offer.is_some());
    let over = strategy_for(&store, &store, &small, ask("c-b2", "u-4", unhappy, next_week)).await;
    assert_eq!(over.offer, None);
    assert!(over.reasons.iter().any(|r| r.why.contains("budget")), "{:?}", over.reasons);
    // A batch whose last message is 20 days old (a backfill) is judged as of then, without an offer.
    let old = Asked { now: now + jiff::SignedDuration::from_hours(24 * 20), ..ask("c-old", "u-1", unhappy, now) };
    let old = strategy_for(&store, &store, &open, old).await;
    assert!(old.offer.is_none() && old.reasons.iter().any(|r| r.why.contains("days old")), "{:?}", old.reasons);
    let week = store.week_figures("2026-W48").await.unwrap().all.offers;
    assert_eq!((week.suggested, week.withheld, week.comparison), (2, 2, 1), "only the held-out one compares");
    let next = store.week_figures("2026-W49").await.unwrap().all.offers;
    assert_eq!((next.suggested, next.withheld, next.comparison), (1, 1, 0), "over budget does not compare");
}

/// When the offer cannot be decided (the store fails), the strategy still answers, without one.
#[tokio::test]
async fn a_failing_offer_store_leaves_the_offer_out_and_says_so() {
    use feedback::customers::strategy::strategy_for;
    let store = InMemory::default();
    late_order_customer(&store, "u-1", 9_900).await;
    store.faults.next("offer", Fault::Throttle);
    let asked = ask("c-1", "u-1", &[("dissatisfied", Severity::Medium)], at("2026-11-24T04:00:00Z"));
    let s = strategy_for(&store, &store, &strategy_settings(no_holdout()), asked).await;
    assert_eq!(s.offer, None);
    assert!(s.reasons.iter().any(|r| r.rule == "offer_unavailable"), "{:?}", s.reasons);
    assert!(s.apologise, "the rest of the strategy stands");
}

/// A VIP whose conversation closed unresolved and unhappy gets a personal check-in (once, no
/// reminder, counted as a check-in; neither a rating given nor an open refund holds it back) where
/// anyone else gets the plain rating request; a VIP whose unresolved conversation was calm gets the
/// plain request too.
#[tokio::test]
async fn an_unhappy_vip_gets_a_check_in_instead_of_a_rating_request() {
    use feedback::customers::orders::OrderEventKind::{Delivered, RefundRequested};
    let (store, outbox) = (InMemory::default(), Outbox::default());
    for (customer, conversation, unhappy) in
        [("u-vip", "c-vip", true), ("u-reg", "c-reg", true), ("u-calm", "c-calm", false)]
    {
        if customer == "u-vip" {
            // The VIP rated the chat 1 star and has a refund open: neither stops a check-in.
            store.insert_rating(&rating(conversation, customer, 1, None, "2026-11-18T03:01:00Z")).await.unwrap();
            let mut refund = order("u-vip-r", RefundRequested, customer, "2026-11-17T02:00:00Z");
            (refund.order_id, refund.total_minor) = ("o-2".into(), None);
            feedback::customers::record_order_events(&store, &[refund], at("2026-11-17T02:00:00Z")).await.unwrap();
        }
        let total = if customer == "u-reg" { 9_900 } else { 900_000 };
        let mut delivered = order(&format!("{customer}-e1"), Delivered, customer, "2026-11-10T02:00:00Z");
        delivered.total_minor = Some(total);
        feedback::customers::record_order_events(&store, &[delivered], at("2026-11-10T02:00:00Z")).await.unwrap();
        if unhappy {
            store.add_triggering_messages(conversation, &["m-1"]).await.unwrap();
        }
        queued(&store, conversation, customer).await;
    }
    let day = at("2026-11-19T03:00:00Z");
    let run = run_follow_ups(&store, &outbox, &signer(), &run_settings(), day).await.unwrap();
    assert_eq!(run.len(), 3, "{run:?}");
    let subject_to = |to: &str| {
        outbox.sent().iter().find_map(|s| match s {
            Sent::Email { to: t, raw, .. } if t.iter().any(|t| t == to) => Some(fakes::mail::read(raw).unwrap()),
            _ => None,
        })
    };
    let vip = subject_to("u-vip@example.com").unwrap_or_else(|| panic!("the VIP is written to: {run:?}"));
    assert!(vip.subject.contains("跟进"), "{}", vip.subject);
    assert!(
        vip.text.contains("资深客服") && vip.text.contains("/r/"),
        "a person follows up, and a link to tell us: {}",
        vip.text
    );
    for plain in ["u-reg@example.com", "u-calm@example.com"] {
        let m = subject_to(plain).unwrap();
        assert!(m.subject.contains("解决了吗"), "{plain}: {}", m.subject);
    }
    let week = store.week_figures("2026-W47").await.unwrap().all;
    assert_eq!((week.check_ins_sent, week.follow_ups_sent), (1, 3), "a check-in is a follow-up too");
    // Two days later: the two rating requests are reminded, the check-in is not.
    let later = day + jiff::SignedDuration::from_hours(49);
    run_follow_ups(&store, &outbox, &signer(), &run_settings(), later).await.unwrap();
    assert_eq!(emails_to(&outbox, "u-vip@example.com"), 1);
    assert_eq!(emails_to(&outbox, "u-reg@example.com"), 2);
}

// Scorecards and experiments -----------------------------------------------------------------------

/// Conversations under two bot intents, one clearly worse: the close counts each once (a retried
/// close counts nothing), a later rating lands in its rows, the week's scorecard puts the worse
/// intent first, and the Monday report names it with its change since last week.
#[tokio::test]
async fn the_scorecard_puts_the_intent_that_hurts_first_and_the_monday_report_names_it() {
    use feedback::customers::feedback::{FeedbackRecord, record_feedback_batch};
    use feedback::insights::scorecards::ScoreBy;
    use feedback::reporting::service::week_scorecard;
    let (store, outbox, rules) = (InMemory::default(), Outbox::default(), TriggerRules::builtin());
    let settings = CloseSettings { follow_up_delay_hours: 24 };
    let chat = |conversation: &str, intent: &str, bot: &str, customer_after: &str| {
        let mut b = batch(conversation, &[("m-1", "我的退款什么时候到账")]);
        let mut reply = message("m-2", Role::Bot, bot, "2026-11-18T03:00:05Z");
        reply.bot_intent = Some(intent.to_owned());
        b.messages.push(reply);
        b.messages.push(message("m-3", Role::Customer, customer_after, "2026-11-18T03:00:08Z"));
        b
    };
    for n in 0..4 {
        let (good, bad) = (format!("c-good-{n}"), format!("c-bad-{n}"));
        let b = chat(&good, "track_order", "已为您查询：包裹今天送达", "好的，谢谢，辛苦了");
        record_messages(&store, &outbox, rules, &EVERY_CATEGORY, b, at("2026-11-18T03:00:09Z")).await.unwrap();
        let b = chat(&bad, "refund_request", "请耐心等待", "又让我等，每次都这样，太失望了，我要投诉");
        record_messages(&store, &outbox, rules, &EVERY_CATEGORY, b, at("2026-11-18T03:00:09Z")).await.unwrap();
        for (c, resolved) in [(&good, true), (&bad, false)] {
            let close = closing(c, Some("u-1"), resolved, "2026-11-18T04:00:00Z");
            close_conversation(&store, &settings, close.clone(), at("2026-11-18T04:00:00Z")).await.unwrap();
            close_conversation(&store, &settings, close, at("2026-11-18T04:00:01Z")).await.unwrap();
        }
    }
    // A rating after the close, through the stream's second reader.
    store.insert_rating(&rating("c-bad-0", "u-1", 1, None, "2026-11-18T05:00:00Z")).await.unwrap();
    let rated = feedback::customers::feedback::FeedbackEvent::Rated {
        conversation_id: "c-bad-0".into(),
        stars: 1,
        at: at("2026-11-18T05:00:00Z"),
        via_follow_up: false,
    };
    let record = FeedbackRecord::Feedback { sequence: "1".into(), customer_id: "u-1".into(), event: rated };
    for _ in 0..2 {
        record_feedback_batch(&store, &store, vec![record.clone()], at("2026-11-18T05:00:01Z")).await;
    }
    let week = feedback::time::IsoWeek::parse("2026-W47").unwrap();
    let card = week_scorecard(&store, week, ScoreBy::Intent).await.unwrap();
    let keys: Vec<&str> = card.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["refund_request", "track_order"], "{:#?}", card.rows);
    let (bad, good) = (&card.rows[0], &card.rows[1]);
    assert_eq!((bad.conversations, good.conversations), (4, 4), "a retried close counts nothing");
    assert_eq!((bad.resolution_pct, good.resolution_pct), (Some(0.0), Some(100.0)));
    assert!(bad.estimated_csat_pct < good.estimated_csat_pct, "{bad:?} {good:?}");
    assert_eq!((bad.ratings, bad.csat_pct), (1, Some(0.0)), "the late rating, once");
    assert!(bad.examples.iter().any(|e| e.contains("太失望")), "{:?}", bad.examples);

    // The Monday after: the report names the intent that hurts and the experiment's state.
    let run = run_weekly(&store, &outbox, &digest_settings(), at("2026-11-24T01:00:00Z"), &PlainDigest).await.unwrap();
    let report = store.report(&run.week).await.unwrap().unwrap();
    assert_eq!(report.intents_hurting.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["refund_request"]);
    let lines = report.service_lines(feedback::i18n::Catalogue::of(feedback::i18n::Locale::En));
    assert!(lines[0].starts_with("Bot intent refund_request: 4 conversations"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("Experiment warm_apology") && l.contains("not enough data yet")),
        "{lines:?}"
    );
}

/// A correction whose write took effect but timed out is retried by the caller: the aggregates
/// moved once, not twice.
#[tokio::test]
async fn a_correction_that_timed_out_and_is_retried_moves_the_aggregates_once() {
    use feedback::analysis::sentiment::Polarity;
    use feedback::insights::corrections::{Correction, FeedbackRef, correct_feedback};
    let store = InMemory::default();
    let items = stored_messages(&store, &["快递一周还没到，太慢了"]).await;
    let outcome = process_batch(&store, &mut Analyzer::new(), &WeekSettings::default().shop_time_zone, items).await;
    assert_eq!(outcome.counted, 1);
    let week = store.week_figures("2026-W47").await.unwrap();
    assert_eq!(week.all.sentiment_negative, 1);
    let item = FeedbackRef::Message { conversation_id: "c-1".into(), message_id: "m-0".into() };
    let neutral = Correction { sentiment: Some(Polarity::Neutral), ..Default::default() };
    store.faults.next("save_correction", Fault::TimeoutAfter);
    let first = correct_feedback(&store, &item, &neutral, "staff-1", at("2026-11-20T00:00:00Z")).await;
    assert!(matches!(&first, Err(e) if e.is_retryable()), "{first:?}");
    let retry =
        correct_feedback(&store, &item, &neutral, "staff-1", at("2026-11-20T00:00:05Z")).await.unwrap().unwrap();
    assert_eq!(retry.version, 2, "the retry found the first one written");
    let week = store.week_figures("2026-W47").await.unwrap();
    assert_eq!((week.all.sentiment_negative, week.all.sentiment_neutral, week.all.items), (0, 1, 1), "moved once");
    assert_eq!(store.labelled_examples().len(), 2, "each correction kept");
}

/// The experiment's verdict is made on the weeks up to the one its horizon was reached in: the
/// conversations of later weeks (however they go) do not change it.
#[tokio::test]
async fn an_experiment_is_judged_at_its_horizon_and_later_weeks_do_not_change_it() {
    use feedback::conversations::store::ConversationStore;
    use feedback::insights::scorecards::{CloseScore, ScoreBy, ScoreKey};
    use feedback::reporting::service::experiment_reports;
    let store = InMemory::default();
    let experiments = feedback::experiments::Experiments::builtin();
    let horizon = experiments.all()[0].horizon as usize;
    // (week's Monday, satisfied share of control, of warm): the horizon is reached in the first.
    let weeks = [("2026-11-02T03:00:00Z", 0.3, 0.6), ("2026-11-09T03:00:00Z", 0.9, 0.1)];
    for (w, (monday, control, warm)) in weeks.iter().enumerate() {
        for (arm, share) in [("control", *control), ("warm", *warm)] {
            for n in 0..horizon {
                let satisfied = if (n as f64) < share * horizon as f64 { 1000 } else { 0 };
                let score = CloseScore {
                    conversation_id: format!("c-{w}-{arm}-{n}"),
                    closed_at: at(monday),
                    rows: vec![ScoreKey { by: ScoreBy::Arm, key: format!("warm_apology:{arm}") }],
                    counters: vec![("conversations", 1), ("estimated", 1), ("estimated_satisfied_milli", satisfied)],
                    rated: true,
                    example: None,
                    estimate_model: None,
                };
                store.score_close(&score).await.unwrap();
            }
        }
    }
    let later = feedback::time::IsoWeek::parse("2026-W47").unwrap();
    let report = &experiment_reports(&store, experiments, later).await.unwrap()[0];
    let sizes: Vec<u64> = report.arms.iter().map(|a| a.conversations).collect();
    assert_eq!(sizes, [horizon as u64, horizon as u64], "only the weeks up to the horizon");
    assert_eq!(
        report.verdict_text(feedback::i18n::Catalogue::of(feedback::i18n::Locale::En)),
        "warm better than control on estimated satisfaction, 95%"
    );
}

// Research panel -----------------------------------------------------------------------------------

async fn panel_contact(store: &InMemory, customer_id: &str, research: bool, locale: &str) {
    store
        .put_contact(&ContactDetails {
            customer_id: customer_id.into(),
            email: Some(format!("{customer_id}@example.com")),
            phone: None,
            consent: Consent { email: true, sms: false, research },
            time_zone: "Asia/Shanghai".into(),
            locale: locale.into(),
            updated_at: at("2026-11-01T00:00:00Z"),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_panel_survey_goes_only_to_members_under_the_follow_up_rules_and_is_answered_once() {
    use feedback::followups::survey::{Invited, SurveyPage, Surveys, invite, open_survey, survey_reports};
    let (store, outbox) = (InMemory::default(), Outbox::default());
    let survey = Surveys::builtin().get("delivery-2026-12").unwrap();
    panel_contact(&store, "u-member", true, "en").await;
    panel_contact(&store, "u-later-out", true, "zh-CN").await;
    panel_contact(&store, "u-not", false, "zh-CN").await;
    // u-tired had a rating request this morning: the one fatigue budget holds for surveys too.
    queued(&store, "c-tired", "u-tired").await;
    panel_contact(&store, "u-tired", true, "zh-CN").await;
    let s = run_settings();
    let morning = at("2026-11-19T03:00:00Z");
    run_follow_ups(&store, &outbox, &signer(), &s, morning).await.unwrap();

    let noon = at("2026-11-19T04:00:00Z");
    let ids: Vec<String> = ["u-member", "u-later-out", "u-not", "u-tired", "u-member"].map(str::to_owned).into();
    let invited = invite(&store, survey, &ids, noon).await.unwrap();
    let outcomes: Vec<Invited> = invited.iter().map(|(_, o)| *o).collect();
    assert_eq!(
        outcomes,
        [Invited::Queued, Invited::Queued, Invited::NotInPanel, Invited::Queued, Invited::AlreadyInvited]
    );
    // Consent withdrawn after the invitation was queued: the run checks it again.
    panel_contact(&store, "u-later-out", false, "zh-CN").await;
    let run = run_follow_ups(&store, &outbox, &signer(), &s, noon).await.unwrap();
    let outcome = |customer: &str| {
        let key = feedback::followups::survey::invitation_key(&survey.id, customer);
        run.iter().find(|(k, _)| *k == key).map(|(_, o)| o.clone())
    };
    assert_eq!(outcome("u-member"), Some(RunOutcome::Sent { channel: FollowUpChannel::Email }));
    assert_eq!(outcome("u-later-out"), Some(RunOutcome::Skipped { reason: "not_in_panel" }));
    let budget_back = morning + jiff::SignedDuration::from_hours(24 * i64::from(s.policy.fatigue_days));
    assert_eq!(outcome("u-tired"), Some(RunOutcome::Deferred { until: budget_back }), "waits for the budget");
    let later = run_follow_ups(&store, &outbox, &signer(), &s, budget_back).await.unwrap();
    assert!(later.iter().any(|(_, o)| *o == RunOutcome::Sent { channel: FollowUpChannel::Email }), "{later:?}");
    // Unsubscribed from everything: no longer a member.
    panel_contact(&store, "u-gone", true, "zh-CN").await;
    feedback::followups::link::LinkStore::opt_out(&store, "u-gone", noon).await.unwrap();
    let gone = invite(&store, survey, &["u-gone".to_owned()], noon).await.unwrap();
    assert_eq!(gone[0].1, Invited::NotInPanel);
    let mail = outbox
        .sent()
        .into_iter()
        .find_map(|m| match m {
            Sent::Email { to, raw } if to.iter().any(|t| t == "u-member@example.com") => Some(raw),
            _ => None,
        })
        .unwrap();
    let text = decoded_text(&mail);
    assert!(text.contains("How was your delivery?"), "in the member's language: {text}");
    let token = text.split("/s/").nth(1).and_then(|t| t.split_whitespace().next()).expect("a survey link").to_owned();
    assert!(signer().verify(&token, noon).is_err(), "a survey token rates nothing");
    assert_eq!(store.week_figures("2026-W47").await.unwrap().all.survey_invites_sent, 1);
    assert_eq!(store.week_figures("2026-W48").await.unwrap().all.survey_invites_sent, 1, "the one that waited");

    let open = |form: Option<std::collections::BTreeMap<String, String>>| {
        let (store, token) = (&store, token.clone());
        async move { open_survey(&signer(), store, store, Surveys::builtin(), &token, form.as_ref(), noon).await.unwrap() }
    };
    let (page, language) = open(None).await;
    assert!(matches!(page, SurveyPage::Form { ref problems, .. } if problems.is_empty()));
    assert_eq!(language, feedback::language::Language::En);
    let answers = |pairs: &[(&str, &str)]| Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let (bad, _) = open(answers(&[("overall", "9")])).await;
    assert!(matches!(bad, SurveyPage::Form { ref problems, .. } if problems == &["overall".to_owned()]));
    let given = [("overall", "2"), ("matters", "updates"), ("improve", "物流信息三天没更新，电话13812345678")];
    assert_eq!(open(answers(&given)).await.0, SurveyPage::Thanks);
    assert_eq!(open(answers(&given)).await.0, SurveyPage::AlreadyAnswered, "answered once");
    assert_eq!(open(None).await.0, SurveyPage::AlreadyAnswered);

    let pending = survey_reports(&store, Surveys::builtin()).await.unwrap();
    assert_eq!(pending[0].questions[2].sentiment, Some([0, 0, 0]), "not analysed before the stream reads it");
    // The stream hands the new response to the analysis, which reads its text like a comment.
    let (_, responses) = feedback::followups::survey::SurveyStore::survey_state(&store, &survey.id).await.unwrap();
    let records = responses
        .into_iter()
        .map(|response| feedback::insights::StreamItem::SurveyAnswer { sequence: "1".into(), response })
        .collect();
    let tz = feedback::config::WeekSettings::default().shop_time_zone;
    let outcome =
        feedback::insights::process_batch(&store, &mut feedback::analysis::Analyzer::new(), &tz, records).await;
    assert_eq!((outcome.recorded, outcome.failed_from), (1, None));
    let reports = survey_reports(&store, Surveys::builtin()).await.unwrap();
    let r = &reports[0];
    assert_eq!((r.invited, r.answered, r.response_rate_pct), (3, 1, Some(33.3)));
    assert_eq!(r.questions[0].stars, Some([0, 1, 0, 0, 0]));
    let text = &r.questions[2];
    assert_eq!(text.sentiment, Some([1, 0, 0]), "the text answer is analysed like a comment");
    assert!(text.issue_types.contains_key("logistics"), "{:?}", text.issue_types);
    assert!(!text.examples[0].contains("13812345678"), "contacts masked: {}", text.examples[0]);
}
