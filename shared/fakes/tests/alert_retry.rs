//! A staff alert claimed by a request that then failed is not lost (issue 12): the caller's retry
//! gets a retryable error while that claim holds, and after it, sends the alert once. Before, the
//! retry was answered 200 with the alert "in progress", and nothing ever sent it. (A binary of its
//! own: it moves the leases' clock.)

use fakes::contract::{at, message};
use fakes::{Fault, InMemory, Outbox, Sent};
use feedback::analysis::triggers::{Severity, TriggerRules};
use feedback::conversations::intake::{ALERT_LEASE_SECONDS, IntakeError, IntakeSettings, record_messages};
use feedback::conversations::{MessageBatch, Role};
use feedback::lease::clock;

#[tokio::test]
async fn an_alert_left_claimed_by_a_failed_request_is_sent_by_the_retry_after_the_lease() {
    let (store, outbox) = (InMemory::default(), Outbox::default());
    let settings = IntakeSettings { alert_min_severity: Severity::High };
    let batch = MessageBatch {
        conversation_id: "c-1".into(),
        customer_id: "u-1".into(),
        messages: vec![message("m-1", Role::Customer, "我要投诉你们", "2026-11-18T03:00:00Z")],
    };
    let now = at("2026-11-18T03:00:10Z");
    clock::set(now);
    // The claim is written, but the request sees a timeout and fails.
    store.faults.next("claim_alert", Fault::TimeoutAfter);
    let first = record_messages(&store, &outbox, TriggerRules::builtin(), &settings, batch.clone(), now).await;
    assert!(matches!(&first, Err(IntakeError::Store(e)) if e.is_retryable()), "{first:?}");
    // The chatbot's retry, a second later: the claim still holds, so it is told to retry.
    clock::set(now + jiff::SignedDuration::from_secs(1));
    let retry = record_messages(&store, &outbox, TriggerRules::builtin(), &settings, batch.clone(), now).await;
    assert!(matches!(retry, Err(IntakeError::AlertInProgress)), "{retry:?}");
    assert!(outbox.sent().is_empty());
    // After the lease, the retry sends it, once.
    clock::set(now + jiff::SignedDuration::from_secs(ALERT_LEASE_SECONDS + 2));
    let later = record_messages(&store, &outbox, TriggerRules::builtin(), &settings, batch.clone(), now).await.unwrap();
    assert_eq!(later.alerts.len(), 1);
    let again = record_messages(&store, &outbox, TriggerRules::builtin(), &settings, batch, now).await.unwrap();
    assert_eq!(again.alerts[0].status, feedback::conversations::intake::AlertStatus::AlreadySent);
    assert_eq!(outbox.sent().iter().filter(|s| matches!(s, Sent::Alert(_))).count(), 1);
}
