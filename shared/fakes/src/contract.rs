//! The contract of the store ports: what every implementation does, asserted the same way on the
//! in-memory fakes (`shared/fakes/tests/contract.rs`) and on the DynamoDB adapters against moto
//! (`tests/tests/contract.rs`). Each function wants stores over one fresh, empty table; where a
//! port's behaviour depends on another's writes (a follow-up exists because a close queued it),
//! the function takes both.

use feedback::Timestamp;
use feedback::analysis::Analyzer;
use feedback::analysis::satisfaction::Satisfaction;
use feedback::analysis::triggers::{Severity, Trigger};
use feedback::config::WeekSettings;
use feedback::conversations::store::{
    Closed, ConversationStore, FollowUpState, MessageStored, Ownership, SET_MEMBERS_KEPT, TriggerEvent,
};
use feedback::conversations::{Channel, ChatMessage, Closing, Role};
use feedback::customers::feedback::{FeedbackEvent, OfferGroup};
use feedback::customers::offers::{
    Decided, OfferBy, OfferKind, OfferRecord, OfferReport, OfferState, OfferStore, ReportError, Withheld, report_offer,
};
use feedback::customers::orders::{OrderEvent, OrderEventKind, OrderStatus};
use feedback::customers::{
    AlongWith, CustomerProfile, EventOutcome, ProfileStore, Saved, record_feedback, record_order_events,
};
use feedback::errors::StoreError;
use feedback::followups::contacts::{Consent, ContactDetails, ContactStore};
use feedback::followups::link::LinkStore;
use feedback::followups::{FollowUpChannel, FollowUpKind, FollowUpStore};
use feedback::insights::weekly::build_report;
use feedback::insights::{AnalysisStore, Applied, FeedbackKind, StoredFeedback, analyse};
use feedback::lease::{Claim, Finish, Lease};
use feedback::ratings::{Rating, RatingStore, RatingSubmission};
use feedback::reporting::{DigestChannel, ReportStore};

pub fn at(text: &str) -> Timestamp {
    text.parse().expect("RFC 3339")
}

fn minutes(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_mins(n)
}

pub fn submission(conversation_id: &str, customer_id: &str, stars: u8, comment: Option<&str>) -> RatingSubmission {
    RatingSubmission {
        conversation_id: conversation_id.into(),
        customer_id: customer_id.into(),
        stars,
        comment: comment.map(str::to_owned),
        channel: Channel::App,
        served_by: None,
        locale: Some("zh-CN".into()),
        issue_types: Vec::new(),
        order_value_minor: None,
        via_follow_up: false,
    }
}

pub fn rating(conversation_id: &str, customer_id: &str, stars: u8, comment: Option<&str>, created: &str) -> Rating {
    let created = at(created);
    Rating::new(
        submission(conversation_id, customer_id, stars, comment),
        feedback::ratings::new_rating_id(created),
        created,
        None,
    )
}

pub fn message(id: &str, role: Role, text: &str, sent: &str) -> ChatMessage {
    ChatMessage {
        message_id: id.to_owned(),
        role,
        text: text.to_owned(),
        sent_at: at(sent),
        customer_id: "u-1".into(),
        channel: Channel::App,
        bot_intent: None,
    }
}

pub fn closing(conversation_id: &str, customer_id: Option<&str>, resolved: bool, closed: &str) -> Closing {
    Closing {
        conversation_id: conversation_id.into(),
        resolved,
        closed_at: at(closed),
        customer_id: customer_id.map(Into::into),
        channel: Some(Channel::App),
        locale: Some("zh-CN".into()),
        agent_id: None,
    }
}

fn contact(customer_id: &str) -> ContactDetails {
    ContactDetails {
        customer_id: customer_id.into(),
        email: Some(format!("{customer_id}@example.com")),
        phone: Some("+8613812345670".into()),
        consent: Consent { email: true, sms: false, research: false },
        time_zone: "Asia/Shanghai".into(),
        locale: "zh-CN".into(),
        updated_at: at("2026-11-01T00:00:00Z"),
    }
}

fn is_lost<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::LeaseLost(_)))
}

/// A conversation is rated once; the second rating gets the first back and changes nothing.
pub async fn ratings(store: &impl RatingStore) {
    let first = rating("c-r", "u-1", 2, Some("太慢了"), "2026-11-18T03:00:00.123Z");
    assert_eq!(store.insert_rating(&first).await.unwrap(), None);
    let second = rating("c-r", "u-1", 5, None, "2026-11-18T04:00:00Z");
    assert_eq!(store.insert_rating(&second).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.rating_of_conversation("c-r").await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.rating_of_conversation("c-none").await.unwrap(), None);
}

/// Ownership, messages stored once (a resend recognised, a reused id refused), trigger events one
/// per category, the triggering messages as a set, and turns in the order they were sent.
pub async fn conversations(store: &impl ConversationStore) {
    let now = at("2026-11-18T03:00:00Z");
    assert_eq!(store.claim_for_customer("c-1", "u-1", Channel::App, &[], now).await.unwrap(), Ownership::Confirmed);
    assert_eq!(store.claim_for_customer("c-1", "u-1", Channel::Web, &[], now).await.unwrap(), Ownership::Confirmed);
    assert_eq!(
        store.claim_for_customer("c-1", "u-2", Channel::App, &[], now).await.unwrap(),
        Ownership::OtherCustomer("u-1".into())
    );

    let batch = [
        (message("m-2", Role::Agent, "请稍等", "2026-11-18T03:00:02Z"), Trigger::NONE),
        (message("m-1", Role::Customer, "快递还没到", "2026-11-18T03:00:01Z"), Trigger::NONE),
        (message("m-3", Role::Customer, "到底什么时候到？", "2026-11-18T03:00:03Z"), Trigger::NONE),
    ];
    let stored = store.insert_messages("c-1", &batch, now).await.unwrap();
    assert_eq!(stored, [MessageStored::Created; 3]);
    let again = [
        batch[0].clone(),
        (message("m-1", Role::Customer, "another text under the same id", "2026-11-18T03:00:01Z"), Trigger::NONE),
    ];
    assert_eq!(
        store.insert_messages("c-1", &again, now).await.unwrap(),
        [MessageStored::Duplicate, MessageStored::Conflict]
    );
    let turns = store.conversation_turns("c-1", 10).await.unwrap();
    let texts: Vec<&str> = turns.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["快递还没到", "请稍等", "到底什么时候到？"], "in the order they were sent, first text kept");
    assert_eq!(turns[1].0, Role::Agent);
    assert_eq!(store.conversation_turns("c-1", 2).await.unwrap().len(), 2, "the last ones");
    assert_eq!(store.conversation_turns("c-1", 2).await.unwrap()[1].1, "到底什么时候到？");
    assert!(store.conversation_turns("c-none", 10).await.unwrap().is_empty());

    let event = |message_id: &'static str, sent: &str| TriggerEvent {
        conversation_id: "c-1",
        customer_id: "u-1",
        category: "not_resolved",
        severity: Severity::Medium,
        rule: Some("zh.still_not"),
        phrase: Some("还没"),
        message_id,
        sent_at: at(sent),
    };
    let first = store.record_trigger(&event("m-1", "2026-11-18T03:00:01Z")).await.unwrap();
    assert_eq!((first.first_message_id.as_str(), first.message_count, first.alerted), ("m-1", 1, false));
    let retry = store.record_trigger(&event("m-1", "2026-11-18T03:00:01Z")).await.unwrap();
    assert_eq!(retry.message_count, 1, "a retry adds nothing");
    let second = store.record_trigger(&event("m-3", "2026-11-18T03:00:03Z")).await.unwrap();
    assert_eq!((second.first_message_id.as_str(), second.message_count), ("m-1", 2));

    assert_eq!(store.add_triggering_messages("c-1", &["m-1"]).await.unwrap(), 1);
    assert_eq!(store.add_triggering_messages("c-1", &["m-1", "m-3"]).await.unwrap(), 2);
}

/// A conversation's growing sets stop at `SET_MEMBERS_KEPT` (DynamoDB would refuse the item past
/// 400 KB, and every later write to the conversation with it): a request goes on succeeding,
/// adds nothing more, and ownership still decides.
pub async fn growing_sets_stop(store: &impl ConversationStore) {
    let now = at("2026-11-18T03:00:00Z");
    let ids = |from: usize| (from..from + 50).map(|i| format!("{i:0>120}")).collect::<Vec<String>>();
    for from in [0, 50, 100, 150, 200] {
        let intents = ids(from);
        let claimed = store.claim_for_customer("c-big", "u-1", Channel::App, &intents, now).await.unwrap();
        assert_eq!(claimed, Ownership::Confirmed, "intents from {from}");
    }
    assert_eq!(
        store.claim_for_customer("c-big", "u-2", Channel::App, &ids(300), now).await.unwrap(),
        Ownership::OtherCustomer("u-1".into()),
        "a full set of intents does not hide the owner"
    );

    let mut sizes = Vec::new();
    for from in [0, 50, 100, 150] {
        let batch = ids(from);
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        sizes.push(store.add_triggering_messages("c-big", &refs).await.unwrap());
    }
    assert_eq!(sizes, [50, 100, 100, 100], "a full set takes no more and says how many it holds");
    assert!((51..=100).contains(&SET_MEMBERS_KEPT), "the sizes above hold for a set that stops at 51 to 100");

    let mut last = None;
    for i in 0..SET_MEMBERS_KEPT + 5 {
        let id = format!("m-{i:0>120}");
        let event = TriggerEvent {
            conversation_id: "c-big",
            customer_id: "u-1",
            category: "dissatisfied",
            severity: Severity::Medium,
            rule: Some("zh.dissatisfied"),
            phrase: Some("不满意"),
            message_id: &id,
            sent_at: now,
        };
        last = Some(store.record_trigger(&event).await.unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.message_count, SET_MEMBERS_KEPT, "the trigger's set stops too");
    assert_eq!(last.first_message_id, format!("m-{:0>120}", 0));
}

/// Closing: an unresolved close queues one follow-up, a resolved one withdraws it, a reopened and
/// again unresolved close queues it again; a close for another customer or without a known
/// customer queues nothing.
pub async fn closing_and_follow_up_queue(store: &impl ConversationStore, links: &impl LinkStore) {
    let due = at("2026-11-19T03:00:00Z");
    store.claim_for_customer("c-2", "u-1", Channel::App, &[], at("2026-11-18T02:00:00Z")).await.unwrap();
    let unresolved = closing("c-2", Some("u-1"), false, "2026-11-18T03:00:00Z");
    assert_eq!(store.close(&unresolved, None, Some(due)).await.unwrap(), Closed::Done(FollowUpState::Scheduled));
    assert_eq!(store.close(&unresolved, None, Some(due)).await.unwrap(), Closed::Done(FollowUpState::AlreadyScheduled));
    assert_eq!(links.follow_up_of("c-2").await.unwrap(), Some(("u-1".into(), Some("zh-CN".into()))));
    let resolved = closing("c-2", Some("u-1"), true, "2026-11-18T04:00:00Z");
    assert_eq!(store.close(&resolved, None, None).await.unwrap(), Closed::Done(FollowUpState::Cancelled));
    assert_eq!(store.close(&resolved, None, None).await.unwrap(), Closed::Done(FollowUpState::Cancelled));
    assert_eq!(store.close(&unresolved, None, Some(due)).await.unwrap(), Closed::Done(FollowUpState::Scheduled));

    let other = closing("c-2", Some("u-9"), false, "2026-11-18T05:00:00Z");
    assert!(matches!(store.close(&other, None, Some(due)).await.unwrap(), Closed::OtherCustomer(_)));
    let anonymous = closing("c-3", None, false, "2026-11-18T05:00:00Z");
    assert_eq!(store.close(&anonymous, None, Some(due)).await.unwrap(), Closed::Done(FollowUpState::CustomerUnknown));
    let never_queued = closing("c-4", Some("u-4"), true, "2026-11-18T05:00:00Z");
    assert_eq!(store.close(&never_queued, None, None).await.unwrap(), Closed::Done(FollowUpState::NotNeeded));
    assert_eq!(links.follow_up_of("c-4").await.unwrap(), None);
}

/// The lease protocol on a staff alert: one holder at a time, the real clock decides lapses, the
/// owner's token conditions every finish, sent is final.
pub async fn alert_leases(store: &impl ConversationStore) {
    let now = at("2026-11-18T03:00:00Z");
    assert_eq!(
        store.claim_alert("c-5", "complaint", &Lease::at("a", now, 60)).await.unwrap(),
        Claim::InProgress,
        "no trigger event, nothing to claim"
    );
    let event = TriggerEvent {
        conversation_id: "c-5",
        customer_id: "u-1",
        category: "complaint",
        severity: Severity::High,
        rule: Some("zh.complaint"),
        phrase: Some("投诉"),
        message_id: "m-1",
        sent_at: now,
    };
    store.record_trigger(&event).await.unwrap();
    let a = Lease::at("run-a", now, 60);
    let b = Lease::at("run-b", now + minutes(0), 60);
    assert_eq!(store.claim_alert("c-5", "complaint", &a).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim_alert("c-5", "complaint", &b).await.unwrap(), Claim::InProgress, "a live lease");
    assert!(is_lost(store.finish_alert("c-5", "complaint", &b, Finish::Sent("x"), now).await), "not b's to finish");
    store.finish_alert("c-5", "complaint", &a, Finish::Released { failure: Some("SNS throttled") }, now).await.unwrap();
    assert_eq!(store.claim_alert("c-5", "complaint", &b).await.unwrap(), Claim::Claimed, "released: free at once");
    // b stalls; its lease lapses on the clock of the next claim, and c takes over.
    let c = Lease::at("run-c", now + minutes(2), 60);
    assert_eq!(store.claim_alert("c-5", "complaint", &c).await.unwrap(), Claim::Claimed);
    assert!(is_lost(store.finish_alert("c-5", "complaint", &b, Finish::Sent("late"), now).await));
    store.finish_alert("c-5", "complaint", &c, Finish::Sent("message-1"), now).await.unwrap();
    let record = store.record_trigger(&event).await.unwrap();
    assert!(record.alerted);
    let d = Lease::at("run-d", now + minutes(10), 60);
    assert_eq!(store.claim_alert("c-5", "complaint", &d).await.unwrap(), Claim::AlreadySent);
}

/// The follow-up queue: due items by time, the lease protocol on each, sending, reminders,
/// deferring, skipping, releasing with a failure, and what the run reads about the customer.
pub async fn follow_ups(
    conversations: &impl ConversationStore,
    store: &impl FollowUpStore,
    contacts: &impl ContactStore,
    ratings: &impl RatingStore,
    links: &impl LinkStore,
) {
    let due_at = at("2026-11-19T03:00:00Z");
    for (conversation, customer) in [("c-6", "u-6"), ("c-7", "u-7")] {
        conversations
            .claim_for_customer(conversation, customer, Channel::App, &[], at("2026-11-18T02:00:00Z"))
            .await
            .unwrap();
        let c = closing(conversation, Some(customer), false, "2026-11-18T03:00:00Z");
        conversations.close(&c, None, Some(due_at)).await.unwrap();
    }
    assert!(store.due(due_at - minutes(1), 72).await.unwrap().is_empty(), "not before it is due");
    let due = store.due(due_at + minutes(30), 72).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|f| f.conversation_id.as_str()).collect();
    assert_eq!(ids, ["c-6", "c-7"]);
    // Closed (in this test's time) long before it was reported: the run finds it however far
    // beyond its look-back, rather than never.
    let much_later = store.due(due_at + jiff::SignedDuration::from_hours(80), 72).await.unwrap();
    assert_eq!(much_later.len(), 2, "a late close is followed up, not lost");
    let f6 = due[0].clone();
    assert_eq!((f6.customer_id.as_str(), f6.kind, f6.attempts, f6.due_at), ("u-6", FollowUpKind::First, 0, due_at));

    // Claims: one holder at a time; a stale view of the item claims nothing.
    let now = due_at + minutes(30);
    let a = Lease::at("run-a", now, 70);
    let b = Lease::at("run-b", now, 70);
    assert!(store.claim(&f6, &a).await.unwrap());
    assert!(!store.claim(&f6, &b).await.unwrap(), "a live lease");
    assert!(is_lost(store.skip(&f6, &b, "rated", now).await), "only the holder changes it");
    // Deferred (quiet hours): due again later, free for whoever comes then.
    let later = due_at + jiff::SignedDuration::from_hours(10);
    store.defer(&f6, &a, later, None).await.unwrap();
    assert!(is_lost(store.defer(&f6, &a, later, None).await), "the lease ended with the change");
    assert!(!store.claim(&f6, &b).await.unwrap(), "due at another time than b saw");
    let f6 = store.due(later, 72).await.unwrap().into_iter().find(|f| f.conversation_id == "c-6").unwrap();
    assert_eq!(f6.due_at, later);

    // Sent, with a reminder queued; the customer's fatigue and facts follow.
    contacts.put_contact(&contact("u-6")).await.unwrap();
    let facts = store.customer_facts("u-6").await.unwrap().unwrap();
    assert_eq!(
        (facts.email.as_deref(), facts.consent_email, facts.consent_sms),
        (Some("u-6@example.com"), true, false)
    );
    assert_eq!((facts.opted_out_email, facts.last_follow_up_at), (false, None));
    assert!(store.customer_facts("u-unknown").await.unwrap().is_none());
    // A hard bounce of another address changes nothing; of this one (in any case), e-mail stops.
    contacts.suppress_email("someone-else@example.com", "bounce", now).await.unwrap();
    assert!(!store.customer_facts("u-6").await.unwrap().unwrap().opted_out_email);
    contacts.put_contact(&contact("u-66")).await.unwrap();
    contacts.suppress_email(" U-66@Example.COM", "complaint", now).await.unwrap();
    contacts.suppress_email("u-66@example.com", "complaint", now).await.unwrap();
    let facts66 = store.customer_facts("u-66").await.unwrap().unwrap();
    assert!(facts66.opted_out_email && !facts66.opted_out_sms, "suppressed for e-mail only");
    let c = Lease::at("run-c", later, 70);
    assert!(store.claim(&f6, &c).await.unwrap());
    let reminder_at = later + jiff::SignedDuration::from_hours(48);
    store.mark_sent(&f6, &c, FollowUpChannel::Email, "message-1", later, Some(reminder_at)).await.unwrap();
    let facts = store.customer_facts("u-6").await.unwrap().unwrap();
    assert_eq!(facts.last_follow_up_at, Some(later));
    let reminder = store.due(reminder_at, 72).await.unwrap().into_iter().find(|f| f.conversation_id == "c-6").unwrap();
    assert_eq!((reminder.kind, reminder.attempts), (FollowUpKind::Reminder, 0));
    let d = Lease::at("run-d", reminder_at, 70);
    assert!(store.claim(&reminder, &d).await.unwrap());
    store.mark_sent(&reminder, &d, FollowUpChannel::Email, "message-2", reminder_at, None).await.unwrap();
    assert!(store.due(reminder_at + minutes(1), 72).await.unwrap().iter().all(|f| f.conversation_id != "c-6"));

    // Released after a failed send: due again at the retry with one attempt more; then for good.
    let f7 = store.due(now, 72).await.unwrap().into_iter().find(|f| f.conversation_id == "c-7").unwrap();
    let e = Lease::at("run-e", now, 70);
    assert!(store.claim(&f7, &e).await.unwrap());
    let retry_at = now + minutes(10);
    store.release(&f7, &e, Some(retry_at), "SES throttled", now).await.unwrap();
    let f7 = store.due(retry_at, 72).await.unwrap().into_iter().find(|f| f.conversation_id == "c-7").unwrap();
    assert_eq!((f7.attempts, f7.due_at), (1, retry_at));
    // A run that died holding it: its lease lapses and the next run takes it.
    let died = Lease::at("run-died", retry_at, 70);
    assert!(store.claim(&f7, &died).await.unwrap());
    let next = Lease::at("run-next", retry_at + minutes(5), 70);
    assert!(store.claim(&f7, &next).await.unwrap(), "a lapsed lease");
    assert!(is_lost(store.release(&f7, &died, None, "late", retry_at).await));
    store.release(&f7, &next, None, "SES rejected the address", retry_at).await.unwrap();
    assert!(
        store.due(retry_at + minutes(10), 72).await.unwrap().iter().all(|f| f.conversation_id != "c-7"),
        "failed for good"
    );

    // Rated and opted out.
    assert!(!store.is_rated("c-7").await.unwrap());
    ratings.insert_rating(&rating("c-7", "u-7", 4, None, "2026-11-19T05:00:00Z")).await.unwrap();
    assert!(store.is_rated("c-7").await.unwrap());
    contacts.put_contact(&contact("u-7")).await.unwrap();
    links.opt_out("u-7", now).await.unwrap();
    let facts = store.customer_facts("u-7").await.unwrap().unwrap();
    assert!(facts.opted_out_email && facts.opted_out_sms);
    contacts.put_contact(&contact("u-7")).await.unwrap();
    assert!(store.customer_facts("u-7").await.unwrap().unwrap().opted_out_email, "new details never undo an opt-out");
}

fn feedback_of(conversation_id: &str, message_id: &str, text: &str, sent: &str) -> StoredFeedback {
    StoredFeedback {
        pk: format!("CONV#{conversation_id}"),
        sk: format!("MSG#{message_id}"),
        kind: FeedbackKind::Message { message_id: message_id.to_owned() },
        conversation_id: conversation_id.into(),
        customer_id: "u-1".into(),
        text: Some(text.to_owned()),
        at: at(sent),
    }
}

/// A message's context is read from the messages sent before it (in time, not id, order; at the
/// same instant the smaller id first), and from its last `EARLIER_READ_MAX` only: the shop's last
/// message further back is not looked for, and the count stops there. A resent batch adds nothing.
pub async fn earlier_is_bounded(conversations: &impl ConversationStore, store: &impl AnalysisStore) {
    use feedback::insights::EARLIER_READ_MAX;
    let total = EARLIER_READ_MAX + 6;
    // Ids count down while time goes up, so id order is the reverse of time order. Two shop
    // messages open the conversation; the customer writes the rest, one a second.
    let messages: Vec<(ChatMessage, Trigger)> = (0..total)
        .map(|i| {
            let role = if i < 2 { Role::Agent } else { Role::Customer };
            let sent = (at("2026-11-18T03:00:00Z") + jiff::SignedDuration::from_secs(i as i64)).to_string();
            (message(&format!("m-{:03}", 999 - i), role, &format!("第{i}条"), &sent), Trigger::NONE)
        })
        .collect();
    conversations.claim_for_customer("c-20", "u-1", Channel::App, &[], at("2026-11-18T03:00:00Z")).await.unwrap();
    for batch in messages.chunks(50) {
        conversations.insert_messages("c-20", batch, at("2026-11-18T03:10:00Z")).await.unwrap();
    }
    conversations.insert_messages("c-20", &messages[..50], at("2026-11-18T03:11:00Z")).await.unwrap();
    let read = |i: usize| {
        let m = &messages[i].0;
        feedback_of("c-20", &m.message_id, &m.text, &feedback::time::iso_millis(m.sent_at))
    };
    let context = |e: feedback::insights::Earlier| (e.shop, e.customer, e.count);
    let some = |s: &str| Some(s.to_owned());

    assert_eq!(context(store.earlier(&read(0)).await.unwrap()), (None, None, 0), "the first message");
    assert_eq!(context(store.earlier(&read(3)).await.unwrap()), (some("第1条"), some("第2条"), 3));
    let within = EARLIER_READ_MAX + 1;
    assert_eq!(
        context(store.earlier(&read(within)).await.unwrap()),
        (some("第1条"), some(&format!("第{}条", within - 1)), EARLIER_READ_MAX),
        "the shop's message is the last of those read"
    );
    assert_eq!(
        context(store.earlier(&read(total - 1)).await.unwrap()),
        (None, some(&format!("第{}条", total - 2)), EARLIER_READ_MAX),
        "the shop's messages are further back than is read"
    );

    // Two messages at the same instant: the smaller id is the earlier.
    let same = "2026-11-18T04:00:00Z";
    let pair = [
        (message("n-2", Role::Customer, "后一条", same), Trigger::NONE),
        (message("n-1", Role::Agent, "前一条", same), Trigger::NONE),
    ];
    conversations.insert_messages("c-21", &pair, at(same)).await.unwrap();
    assert_eq!(
        context(store.earlier(&feedback_of("c-21", "n-2", "后一条", same)).await.unwrap()),
        (some("前一条"), None, 1)
    );
    assert_eq!(context(store.earlier(&feedback_of("c-21", "n-1", "前一条", same)).await.unwrap()), (None, None, 0));
}

/// Analysis applied once and counted once (a repeat linked, not counted), its context read, the
/// estimate counted once and paired with the stars once, and the week read back.
pub async fn analysis_and_aggregates(
    conversations: &impl ConversationStore,
    ratings: &impl RatingStore,
    store: &impl AnalysisStore,
    reports: &impl ReportStore,
) {
    let weeks = WeekSettings::default();
    let mut analyzer = Analyzer::new();
    let tz = &weeks.shop_time_zone;
    let gone = analyse(&mut analyzer, feedback_of("c-8", "m-9", "快递太慢了", "2026-11-18T03:00:00Z"), tz);
    assert_eq!(store.apply(&gone).await.unwrap(), Applied::Gone, "an item that is not stored");

    let batch = [
        (message("m-1", Role::Customer, "快递一周还没到，太慢了", "2026-11-18T03:00:01Z"), Trigger::NONE),
        (message("m-2", Role::Agent, "帮您催一下", "2026-11-18T03:00:02Z"), Trigger::NONE),
        (message("m-3", Role::Customer, "快递一周还没到，太慢了", "2026-11-18T03:00:03Z"), Trigger::NONE),
    ];
    conversations.claim_for_customer("c-8", "u-1", Channel::App, &[], at("2026-11-18T03:00:00Z")).await.unwrap();
    conversations.insert_messages("c-8", &batch, at("2026-11-18T03:00:04Z")).await.unwrap();
    let third = feedback_of("c-8", "m-3", "快递一周还没到，太慢了", "2026-11-18T03:00:03Z");
    let earlier = store.earlier(&third).await.unwrap();
    assert_eq!(
        (earlier.shop.as_deref(), earlier.customer.as_deref(), earlier.count),
        (Some("帮您催一下"), Some("快递一周还没到，太慢了"), 2)
    );

    let first = analyse(&mut analyzer, feedback_of("c-8", "m-1", "快递一周还没到，太慢了", "2026-11-18T03:00:01Z"), tz);
    assert!(first.counts() && first.counted_types.iter().any(|t| t == "logistics"), "{:?}", first.counted_types);
    assert_eq!(store.apply(&first).await.unwrap(), Applied::Counted);
    assert_eq!(store.apply(&first).await.unwrap(), Applied::AlreadyApplied, "a retried record");
    let repeat = analyse(&mut analyzer, third, tz);
    assert_eq!(store.apply(&repeat).await.unwrap(), Applied::Duplicate { first: "CONV#c-8/MSG#m-1".into() });

    let week = reports.week_figures("2026-W47").await.unwrap();
    assert_eq!((week.all.items, week.all.customers, week.all.sentiment_negative), (1, 1, 1), "{:?}", week.all);
    let logistics = &week.types["logistics"];
    assert_eq!((logistics.items, logistics.customers, logistics.examples.len()), (1, 1, 1));
    assert_eq!(logistics.examples[0].text, "快递一周还没到，太慢了");

    // The estimate of a closed conversation, counted once; the rating that follows pairs with it once.
    let model = feedback::analysis::satisfaction::SatisfactionModel::conversation().id();
    let estimate = Satisfaction { model, ..Satisfaction::new(-1.0, 0.1, 0.7) };
    let c = closing("c-8", Some("u-1"), false, "2026-11-18T04:00:00Z");
    conversations.close(&c, Some(estimate), None).await.unwrap();
    conversations.close(&c, Some(estimate), None).await.unwrap();
    let stored = rating("c-8", "u-1", 1, None, "2026-11-18T05:00:00Z");
    ratings.insert_rating(&stored).await.unwrap();
    let rated = StoredFeedback {
        pk: "CONV#c-8".into(),
        sk: "RATING".into(),
        kind: FeedbackKind::Rating { stars: 1, chosen_types: Vec::new(), order_value_minor: None, via_follow_up: true },
        conversation_id: "c-8".into(),
        customer_id: "u-1".into(),
        text: None,
        at: at("2026-11-18T05:00:00Z"),
    };
    let rated = analyse(&mut analyzer, rated, tz);
    assert_eq!(store.apply(&rated).await.unwrap(), Applied::Counted);
    assert_eq!(store.apply(&rated).await.unwrap(), Applied::AlreadyApplied);
    let week = reports.week_figures("2026-W47").await.unwrap();
    let all = &week.all;
    assert_eq!(
        (all.estimated, all.paired, all.ratings, all.stars[0], all.follow_up_answers),
        (1, 1, 1, 1, 1),
        "{all:?}"
    );
    assert_eq!(all.estimated_stars_tenths as f32 / 10.0, estimate.expected_stars);
    assert_eq!(all.estimate_models, [model.to_string()].into(), "the week knows which model estimated it");
    assert_eq!(all.estimated_with_model, 1, "and that every estimate's model is in it");
    let headlines = reports.headlines(&["2026-W46".into(), "2026-W47".into()]).await.unwrap();
    assert_eq!((headlines[0].ratings, headlines[1].ratings, headlines[1].feedback), (0, 1, 2));
    assert_eq!(headlines[1].estimated.models, [model.to_string()]);

    // The export: ratings and trigger events of the days asked for.
    let (rows, more) =
        reports.feedback_rows(jiff::civil::date(2026, 11, 18), jiff::civil::date(2026, 11, 18), 10).await.unwrap();
    assert!(!more);
    let rating_row = rows.iter().find(|r| r.kind == "rating").expect("the rating");
    assert_eq!((rating_row.stars, rating_row.conversation_id.as_str()), (Some(1), "c-8"));
    assert_eq!(rating_row.sentiment.as_deref(), Some(rated.analysis.sentiment.label.as_str()));
}

/// A week's report is stored once; its digests follow the lease protocol per channel.
pub async fn reports_and_digest_leases(store: &impl ReportStore) {
    let now = at("2026-11-23T01:00:00Z");
    let lease = Lease::at("run-a", now, 70);
    assert!(store.claim_digest("2026-W47", DigestChannel::Email, &lease).await.is_err(), "no report yet");
    let empty = feedback::insights::weekly::WeekFigures { week: "2026-W47".into(), ..Default::default() };
    let report = build_report(&empty, &feedback::insights::weekly::WeekFigures::default(), now);
    assert_eq!(store.report("2026-W47").await.unwrap(), None);
    assert_eq!(store.save_report(&report).await.unwrap(), report);
    let later = build_report(&empty, &feedback::insights::weekly::WeekFigures::default(), now + minutes(5));
    assert_eq!(store.save_report(&later).await.unwrap(), report, "the first one stays");
    assert_eq!(store.report("2026-W47").await.unwrap(), Some(report));

    let b = Lease::at("run-b", now, 70);
    assert_eq!(store.claim_digest("2026-W47", DigestChannel::Email, &lease).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim_digest("2026-W47", DigestChannel::Email, &b).await.unwrap(), Claim::InProgress);
    assert_eq!(
        store.claim_digest("2026-W47", DigestChannel::StaffTopic, &b).await.unwrap(),
        Claim::Claimed,
        "per channel"
    );
    assert!(is_lost(store.finish_digest("2026-W47", DigestChannel::Email, &b, Finish::Sent("x"), now).await));
    store
        .finish_digest("2026-W47", DigestChannel::Email, &lease, Finish::Released { failure: Some("SES") }, now)
        .await
        .unwrap();
    assert_eq!(store.claim_digest("2026-W47", DigestChannel::Email, &b).await.unwrap(), Claim::Claimed);
    store.finish_digest("2026-W47", DigestChannel::Email, &b, Finish::Sent("m-1"), now).await.unwrap();
    let c = Lease::at("run-c", now + minutes(10), 70);
    assert_eq!(store.claim_digest("2026-W47", DigestChannel::Email, &c).await.unwrap(), Claim::AlreadySent);
    // The topic's holder stalled: the next run takes it over after the lease.
    assert_eq!(store.claim_digest("2026-W47", DigestChannel::StaffTopic, &c).await.unwrap(), Claim::Claimed);
    assert!(is_lost(store.finish_digest("2026-W47", DigestChannel::StaffTopic, &b, Finish::Sent("late"), now).await));
}

fn order_event(id: &str, kind: OrderEventKind, order: &str, when: &str) -> OrderEvent {
    OrderEvent {
        event_id: id.into(),
        kind,
        order_id: order.into(),
        customer_id: "u-p".into(),
        at: at(when),
        total_minor: Some(19_900),
        currency: Some("CNY".into()),
        items: Vec::new(),
        promised_delivery_at: Some(at("2026-11-22T00:00:00Z")),
        carrier: None,
    }
}

/// Profiles: written only over the version read, each event once; the use case on top retries a
/// conflict and reports duplicates.
pub async fn profiles(store: &impl ProfileStore, contacts: &impl ContactStore) {
    let now = at("2026-11-25T00:00:00Z");
    assert!(store.profile("u-p").await.unwrap().is_none());
    // Known by contact details alone: an empty profile with the preferences, version 0.
    contacts.put_contact(&contact("u-c")).await.unwrap();
    let known = store.profile("u-c").await.unwrap().unwrap();
    assert_eq!((known.version, known.profile.order_count), (0, 0));
    let prefs = known.contact.unwrap();
    assert!(prefs.has_email && prefs.has_phone && prefs.consent_email && !prefs.consent_sms && !prefs.opted_out_email);
    assert_eq!(prefs.time_zone.as_deref(), Some("Asia/Shanghai"));
    let mut p = CustomerProfile::new("u-p");
    p.apply(&order_event("e-1", OrderEventKind::Placed, "o-1", "2026-11-20T00:00:00Z"), now);
    assert_eq!(store.save_with_event(&p, 0, "e-1", &AlongWith::default(), now).await.unwrap(), Saved::Applied);
    let read = store.profile("u-p").await.unwrap().unwrap();
    assert_eq!((read.version, &read.profile, &read.contact), (1, &p, &None), "read back as written");
    assert_eq!(
        store.save_with_event(&p, 1, "e-1", &AlongWith::default(), now).await.unwrap(),
        Saved::Duplicate,
        "an event once"
    );
    assert_eq!(
        store.save_with_event(&p, 0, "e-2", &AlongWith::default(), now).await.unwrap(),
        Saved::Conflict,
        "a stale read"
    );
    assert_eq!(store.profile("u-p").await.unwrap().unwrap().version, 1, "nothing of the refused writes");

    let events = [
        order_event("e-3", OrderEventKind::Delivered, "o-1", "2026-11-23T00:00:00Z"),
        order_event("e-2", OrderEventKind::Shipped, "o-1", "2026-11-21T00:00:00Z"),
        order_event("e-1", OrderEventKind::Placed, "o-1", "2026-11-20T00:00:00Z"),
    ];
    let outcomes = record_order_events(store, &events, now).await.unwrap();
    let kinds: Vec<&EventOutcome> = outcomes.iter().map(|(_, o)| o).collect();
    assert_eq!(kinds, [&EventOutcome::Applied, &EventOutcome::Applied, &EventOutcome::Duplicate]);
    let read = store.profile("u-p").await.unwrap().unwrap();
    assert_eq!(read.version, 3);
    assert_eq!((read.profile.order_count, read.profile.orders[0].status), (1, OrderStatus::Delivered));
    assert_eq!(read.profile.order_total_minor, 19_900, "one order, counted once");
}

/// What a conversation stands at: its customer and its triggers, the most severe first.
pub async fn standing(store: &impl ConversationStore) {
    assert_eq!(store.standing("c-st").await.unwrap(), None, "never recorded");
    let now = at("2026-11-25T08:00:00Z");
    store.claim_for_customer("c-st", "u-st", Channel::App, &[], now).await.unwrap();
    let fresh = store.standing("c-st").await.unwrap().unwrap();
    assert_eq!((fresh.customer_id.as_deref(), fresh.triggers.len()), (Some("u-st"), 0));
    for (category, severity, message) in [
        ("not_resolved", Severity::Medium, "m-1"),
        ("complaint", Severity::High, "m-2"),
        ("not_resolved", Severity::Medium, "m-3"),
    ] {
        let event = TriggerEvent {
            conversation_id: "c-st",
            customer_id: "u-st",
            category,
            severity,
            rule: None,
            phrase: None,
            message_id: message,
            sent_at: now,
        };
        store.record_trigger(&event).await.unwrap();
    }
    let s = store.standing("c-st").await.unwrap().unwrap();
    assert_eq!(
        s.triggers,
        [("complaint".to_owned(), Severity::High), ("not_resolved".to_owned(), Severity::Medium)],
        "one entry per category, the most severe first"
    );
}

/// A held follow-up (an order late, a refund open) keeps the time of its first hold through later
/// holds; a plain deferral (quiet hours) holds nothing.
pub async fn follow_up_holds(conversations: &impl ConversationStore, store: &impl FollowUpStore) {
    let due_at = at("2026-11-19T03:00:00Z");
    conversations.claim_for_customer("c-h", "u-h", Channel::App, &[], at("2026-11-18T02:00:00Z")).await.unwrap();
    conversations.close(&closing("c-h", Some("u-h"), false, "2026-11-18T03:00:00Z"), None, Some(due_at)).await.unwrap();
    let find = |when: Timestamp| async move {
        store.due(when, 72).await.unwrap().into_iter().find(|f| f.conversation_id == "c-h").unwrap()
    };
    let f = find(due_at).await;
    assert_eq!(f.held_since, None);
    let first = due_at + minutes(5);
    assert!(store.claim(&f, &Lease::at("run-1", first, 70)).await.unwrap());
    store.defer(&f, &Lease::at("run-1", first, 70), first + minutes(60), None).await.unwrap();
    let f = find(first + minutes(60)).await;
    assert_eq!(f.held_since, None, "quiet hours are not a hold");
    let held_at = first + minutes(60);
    assert!(store.claim(&f, &Lease::at("run-2", held_at, 70)).await.unwrap());
    store.defer(&f, &Lease::at("run-2", held_at, 70), held_at + minutes(60), Some(held_at)).await.unwrap();
    let f = find(held_at + minutes(60)).await;
    assert_eq!(f.held_since, Some(held_at));
    let again = held_at + minutes(60);
    assert!(store.claim(&f, &Lease::at("run-3", again, 70)).await.unwrap());
    store.defer(&f, &Lease::at("run-3", again, 70), again + minutes(60), Some(again)).await.unwrap();
    assert_eq!(find(again + minutes(60)).await.held_since, Some(held_at), "the first hold's time is kept");
}

/// An apology queued with its event comes out of the follow-up queue as one, with its order.
pub async fn apology_queue(profiles: &impl ProfileStore, follow_ups: &impl FollowUpStore) {
    let now = at("2026-11-25T02:00:00Z");
    let mut p = CustomerProfile::new("u-a");
    let delayed = order_event("e-d", OrderEventKind::Delayed, "o-9", "2026-11-25T01:00:00Z");
    p.apply(&delayed, now);
    let apology = feedback::customers::QueuedApology {
        key: "~delay~e-d".into(),
        customer_id: "u-a".into(),
        order_id: "o-9".into(),
        promised_delivery_at: Some(at("2026-11-28T10:00:00Z")),
        locale: Some("en".into()),
        due_at: now,
        only_if_late: false,
    };
    assert_eq!(
        profiles
            .save_with_event(&p, 0, "e-d", &AlongWith { apology: Some(apology), payoff: Vec::new() }, now)
            .await
            .unwrap(),
        Saved::Applied
    );
    let due = follow_ups.due(now + minutes(1), 72).await.unwrap();
    let f = due.iter().find(|f| f.conversation_id == "~delay~e-d").expect("the apology is due");
    assert_eq!((f.kind, f.customer_id.as_str(), f.locale.as_deref()), (FollowUpKind::Apology, "u-a", Some("en")));
    assert_eq!(
        f.apology,
        Some(feedback::followups::ApologyFor {
            order_id: "o-9".into(),
            promised_delivery_at: Some(at("2026-11-28T10:00:00Z")),
            only_if_late: false
        })
    );
}

fn offer(conversation_id: &str, customer_id: &str, value_minor: i64) -> OfferRecord {
    OfferRecord {
        conversation_id: conversation_id.into(),
        customer_id: customer_id.into(),
        week: "2026-W48".into(),
        kind: OfferKind::Coupon,
        value_minor,
        currency: "CNY".into(),
        rule: "make_good_a_late_order".into(),
        why: "an order is late".into(),
        by: OfferBy::Bot,
        state: OfferState::Suggested,
        withheld: None,
        decided_at: at("2026-11-24T02:00:00Z"),
        reported_at: None,
        cap_slot: None,
        cap_previous: None,
    }
}

/// Offers: one decision per conversation; a suggestion only within the week's budget, whose
/// reservation a "not made" gives back; moves only from the state read; every decision and move
/// counted once in its week.
pub async fn offers(store: &impl OfferStore, reports: &impl ReportStore) {
    assert_eq!(store.offer("c-o1").await.unwrap(), None);
    let first = offer("c-o1", "u-o1", 3_000);
    assert_eq!(store.decide(&first, 5_000).await.unwrap(), Decided::Stored);
    assert_eq!(store.offer("c-o1").await.unwrap().as_ref(), Some(&first), "read back as written");
    let mut again = offer("c-o1", "u-o1", 1_000);
    again.state = OfferState::Withheld;
    again.withheld = Some(Withheld::Holdout);
    assert_eq!(store.decide(&again, 5_000).await.unwrap(), Decided::Existing(Box::new(first.clone())), "one decision");
    // 3,000 of 5,000 reserved: 3,000 more does not fit, 2,000 does.
    assert_eq!(store.decide(&offer("c-o2", "u-o2", 3_000), 5_000).await.unwrap(), Decided::OverBudget);
    assert_eq!(store.offer("c-o2").await.unwrap(), None, "nothing stored over budget");
    let mut withheld = offer("c-o2", "u-o2", 3_000);
    withheld.state = OfferState::Withheld;
    withheld.withheld = Some(Withheld::WeeklyBudget);
    assert_eq!(store.decide(&withheld, 5_000).await.unwrap(), Decided::Stored, "a withheld one needs no room");
    // Not made: its reservation goes back, and 5,000 fits again.
    let not_made = report_offer(store, "c-o1", OfferReport { made: false, accepted: None }, at("2026-11-24T03:00:00Z"))
        .await
        .unwrap();
    assert_eq!(not_made.state, OfferState::NotMade);
    assert_eq!(store.decide(&offer("c-o3", "u-o3", 5_000), 5_000).await.unwrap(), Decided::Stored);
    let made = OfferReport { made: true, accepted: Some(true) };
    let accepted = report_offer(store, "c-o3", made, at("2026-11-24T04:00:00Z")).await.unwrap();
    assert_eq!(accepted.state, OfferState::Accepted);
    assert_eq!(report_offer(store, "c-o3", made, at("2026-11-24T05:00:00Z")).await.unwrap(), accepted, "said again");
    let stale = store.offer("c-o3").await.unwrap().unwrap();
    assert!(!store.report(&stale, OfferState::Suggested).await.unwrap(), "a move from a state no longer there");
    assert!(matches!(
        report_offer(store, "c-o3", OfferReport { made: false, accepted: None }, at("2026-11-24T05:00:00Z")).await,
        Err(ReportError::Contradicts { state: OfferState::Accepted })
    ));
    assert!(matches!(
        report_offer(store, "c-o2", made, at("2026-11-24T05:00:00Z")).await,
        Err(ReportError::Withheld(Withheld::WeeklyBudget))
    ));
    assert!(matches!(report_offer(store, "c-none", made, at("2026-11-24T05:00:00Z")).await, Err(ReportError::NoOffer)));
    // A held-out decision is the comparison.
    let mut held = offer("c-o4", "u-o4", 2_000);
    held.state = OfferState::Withheld;
    held.withheld = Some(Withheld::Holdout);
    assert_eq!(store.decide(&held, 5_000).await.unwrap(), Decided::Stored);
    let o = reports.week_figures("2026-W48").await.unwrap().all.offers;
    assert_eq!((o.suggested, o.withheld, o.made, o.accepted), (2, 2, 1, 1));
    assert_eq!((o.value_made_minor, o.cost_minor), (5_000, 5_000));
    assert_eq!(o.comparison, 1, "held out only: over budget and not made are not random");

    // The customer's cap slot: taken with the decision only if it still holds what was read;
    // given back when the offer is not made.
    assert!(store.cap_slots("u-o5").await.unwrap().iter().all(Option::is_none));
    let mut first = offer("c-o5", "u-o5", 1_000);
    first.week = "2026-W49".into();
    first.cap_slot = Some(0);
    assert_eq!(store.decide(&first, 5_000).await.unwrap(), Decided::Stored);
    assert_eq!(store.cap_slots("u-o5").await.unwrap(), [Some(first.decided_at)]);
    let mut second = offer("c-o6", "u-o5", 1_000);
    second.week = "2026-W49".into();
    second.cap_slot = Some(0);
    assert_eq!(store.decide(&second, 5_000).await.unwrap(), Decided::CapTaken, "read before the first took it");
    assert_eq!(store.offer("c-o6").await.unwrap(), None, "nothing stored");
    report_offer(store, "c-o5", OfferReport { made: false, accepted: None }, at("2026-11-30T03:00:00Z")).await.unwrap();
    assert!(store.cap_slots("u-o5").await.unwrap().iter().all(Option::is_none), "given back");
    assert_eq!(store.decide(&second, 5_000).await.unwrap(), Decided::Stored);
}

/// Feedback folds into the profile once per piece, and completes an offer's payoff counts (a
/// rating, a repeat order) in the offer's week, once.
pub async fn feedback_and_payoff(profiles: &impl ProfileStore, reports: &impl ReportStore) {
    let now = at("2026-11-25T02:00:00Z");
    let offered = FeedbackEvent::Offer {
        conversation_id: "c-f1".into(),
        week: "2026-W47".into(),
        group: OfferGroup::Offered,
        value_minor: 2_000,
        at: at("2026-11-20T02:00:00Z"),
    };
    assert_eq!(record_feedback(profiles, "u-f", &offered, now).await.unwrap(), EventOutcome::Applied);
    // A second conversation of the same week, on the comparison side: one order repeats both.
    let compared = FeedbackEvent::Offer {
        conversation_id: "c-f2".into(),
        week: "2026-W47".into(),
        group: OfferGroup::Comparison,
        value_minor: 2_000,
        at: at("2026-11-20T03:00:00Z"),
    };
    record_feedback(profiles, "u-f", &compared, now).await.unwrap();
    let rated = FeedbackEvent::Rated {
        conversation_id: "c-f1".into(),
        stars: 5,
        at: at("2026-11-21T02:00:00Z"),
        via_follow_up: false,
    };
    assert_eq!(record_feedback(profiles, "u-f", &rated, now).await.unwrap(), EventOutcome::Applied);
    assert_eq!(record_feedback(profiles, "u-f", &rated, now).await.unwrap(), EventOutcome::Duplicate);
    let mut placed = order_event("e-f1", OrderEventKind::Placed, "o-f1", "2026-11-24T00:00:00Z");
    placed.customer_id = "u-f".into();
    record_order_events(profiles, &[placed.clone()], now).await.unwrap();
    record_order_events(profiles, &[placed], now).await.unwrap();
    let read = profiles.profile("u-f").await.unwrap().unwrap();
    let view = read.profile.view(&feedback::customers::TierSettings::default(), now);
    assert_eq!((view.feedback.ratings, view.feedback.offers_90d, view.orders.count), (1, 1, 1));
    let o = reports.week_figures("2026-W47").await.unwrap().all.offers;
    assert_eq!((o.offered_rated, o.offered_satisfied, o.offered_repeat), (1, 1, 1), "each once");
    assert_eq!((o.comparison_rated, o.comparison_repeat), (0, 1));
}

/// Scorecards: what a close needs is read back (intents, channel, agent, triggers, rating); a
/// close is counted once, and not without a rating that came meanwhile; a later rating is counted
/// once into the close's rows; rows are read back by week and dimension.
pub async fn scorecards(
    conversations: &impl ConversationStore,
    ratings: &impl RatingStore,
    reports: &impl ReportStore,
) {
    use feedback::insights::scorecards::{CloseScore, ScoreBy, Scored, close_counters, dimensions};
    let now = at("2026-11-24T08:00:00Z");
    let intents = ["track_order".to_owned(), "refund".to_owned()];
    conversations.claim_for_customer("c-sc", "u-sc", Channel::App, &intents, now).await.unwrap();
    conversations.claim_for_customer("c-sc", "u-sc", Channel::App, &intents[..1], now).await.unwrap();
    let event = TriggerEvent {
        conversation_id: "c-sc",
        customer_id: "u-sc",
        category: "want_human",
        severity: Severity::Medium,
        rule: None,
        phrase: None,
        message_id: "m-1",
        sent_at: now,
    };
    conversations.record_trigger(&event).await.unwrap();
    let mut close = closing("c-sc", Some("u-sc"), false, "2026-11-24T08:10:00Z");
    close.agent_id = Some("agent-7".into());
    conversations.close(&close, None, None).await.unwrap();
    let mut facts = conversations.closing_facts("c-sc").await.unwrap();
    facts.intents.sort();
    assert_eq!(facts.intents, ["refund", "track_order"], "a set: the second claim added nothing");
    assert_eq!((facts.channel.as_deref(), facts.agent_id.as_deref()), (Some("app"), Some("agent-7")));
    assert_eq!((facts.triggers.as_slice(), facts.rating), (&["want_human".to_owned()][..], None));
    let score = |facts: &feedback::insights::scorecards::ClosingFacts| CloseScore {
        conversation_id: "c-sc".into(),
        closed_at: close.closed_at,
        rows: dimensions(facts, &[("warm_apology".into(), "warm".into())]),
        counters: close_counters(false, None, facts),
        rated: facts.rating.is_some(),
        example: Some("客服一直不回".into()),
        estimate_model: Some("s-0000000000000001".into()),
    };
    // A rating lands between the read and the write: the unrated score is refused.
    ratings.insert_rating(&rating("c-sc", "u-sc", 2, None, "2026-11-24T08:11:00Z")).await.unwrap();
    assert_eq!(conversations.score_close(&score(&facts)).await.unwrap(), Scored::RatedMeanwhile);
    let facts = conversations.closing_facts("c-sc").await.unwrap();
    assert_eq!(facts.rating, Some((2, false)));
    assert_eq!(conversations.score_close(&score(&facts)).await.unwrap(), Scored::Counted);
    assert_eq!(conversations.score_close(&score(&facts)).await.unwrap(), Scored::Already, "a retried close");
    assert!(!conversations.score_rating("c-sc", 2, false).await.unwrap(), "its rating came with the close");

    // Another conversation closed unrated, then rated through a follow-up link.
    conversations.claim_for_customer("c-sc2", "u-sc", Channel::Web, &intents[..1], now).await.unwrap();
    conversations.close(&closing("c-sc2", Some("u-sc"), true, "2026-11-24T09:00:00Z"), None, None).await.unwrap();
    let facts2 = conversations.closing_facts("c-sc2").await.unwrap();
    let mut s2 = score(&facts2);
    s2.conversation_id = "c-sc2".into();
    s2.rows = dimensions(&facts2, &[]);
    s2.counters = close_counters(true, None, &facts2);
    s2.example = None;
    s2.estimate_model = Some("s-0000000000000002".into());
    assert_eq!(conversations.score_close(&s2).await.unwrap(), Scored::Counted);
    assert!(!conversations.score_rating("c-none", 5, true).await.unwrap(), "never closed: nothing to do");
    assert!(conversations.score_rating("c-sc2", 5, true).await.unwrap());
    assert!(!conversations.score_rating("c-sc2", 5, true).await.unwrap(), "once");

    let by = |by: ScoreBy| async move {
        let mut rows = reports.scorecard("2026-W48", by).await.unwrap();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    let intents = by(ScoreBy::Intent).await;
    let keys: Vec<&str> = intents.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["refund", "track_order"]);
    let track = &intents[1].1;
    assert_eq!((track.conversations, track.resolved, track.want_human, track.triggered), (2, 1, 1, 1));
    assert_eq!((track.ratings, track.satisfied, track.follow_up_answers), (2, 1, 1));
    assert_eq!(track.examples, ["客服一直不回"]);
    assert_eq!(track.estimate_models, ["s-0000000000000001".to_owned(), "s-0000000000000002".to_owned()].into());
    assert_eq!(intents[0].1.estimate_models, ["s-0000000000000001".to_owned()].into(), "each row its own");
    let channels = by(ScoreBy::Channel).await;
    assert_eq!(
        channels.iter().map(|(k, c)| (k.as_str(), c.conversations)).collect::<Vec<_>>(),
        [("app", 1), ("web", 1)]
    );
    let agents = by(ScoreBy::Agent).await;
    assert_eq!((agents.len(), agents[0].0.as_str(), agents[0].1.ratings), (1, "agent-7", 1));
    let arms = by(ScoreBy::Arm).await;
    assert_eq!((arms[0].0.as_str(), arms[0].1.conversations), ("warm_apology:warm", 1));
    assert!(reports.scorecard("2026-W47", ScoreBy::Intent).await.unwrap().is_empty());
}

/// Corrections: an analysed message can be corrected; the aggregates move by the difference once
/// (a retry moves nothing), a second correction moves from the first, a duplicate is not
/// correctable, a stale read is refused, and each correction is kept.
pub async fn corrections(
    conversations: &impl ConversationStore,
    store: &impl AnalysisStore,
    reports: &impl ReportStore,
    corrections: &impl feedback::insights::corrections::CorrectionStore,
) {
    use feedback::analysis::sentiment::Polarity;
    use feedback::insights::corrections::{Correction, FeedbackRef, correct_feedback};
    let tz = WeekSettings::default().shop_time_zone;
    let mut analyzer = Analyzer::new();
    let batch = [
        (message("m-1", Role::Customer, "快递一周还没到，太慢了", "2026-11-18T03:00:01Z"), Trigger::NONE),
        (message("m-2", Role::Customer, "快递一周还没到，太慢了", "2026-11-18T03:00:03Z"), Trigger::NONE),
    ];
    conversations.claim_for_customer("c-cr", "u-1", Channel::App, &[], at("2026-11-18T03:00:00Z")).await.unwrap();
    conversations.insert_messages("c-cr", &batch, at("2026-11-18T03:00:04Z")).await.unwrap();
    let first =
        analyse(&mut analyzer, feedback_of("c-cr", "m-1", "快递一周还没到，太慢了", "2026-11-18T03:00:01Z"), &tz);
    assert_eq!(store.apply(&first).await.unwrap(), Applied::Counted);
    let repeat =
        analyse(&mut analyzer, feedback_of("c-cr", "m-2", "快递一周还没到，太慢了", "2026-11-18T03:00:03Z"), &tz);
    assert!(matches!(store.apply(&repeat).await.unwrap(), Applied::Duplicate { .. }));
    let before = reports.week_figures("2026-W47").await.unwrap();
    assert_eq!((before.all.sentiment_negative, before.types["logistics"].items), (1, 1));
    let examples = &before.types["logistics"].examples;
    assert_eq!(examples[0].reference.as_deref(), Some("message~c-cr~m-1"), "an example says which item to correct");

    let item = FeedbackRef::Message { conversation_id: "c-cr".into(), message_id: "m-1".into() };
    let read = corrections.countable(&item).await.unwrap().expect("a counted message is correctable");
    assert_eq!((read.version, read.text.as_deref()), (0, Some("快递一周还没到，太慢了")));
    assert_eq!(read.model_version.as_deref(), Some(feedback::analysis::model_version()), "what made the analysis");
    let to_price = Correction {
        sentiment: Some(Polarity::Neutral),
        issue_types: Some(vec!["price".into()]),
        ..Default::default()
    };
    let done =
        correct_feedback(corrections, &item, &to_price, "staff-1", at("2026-11-20T00:00:00Z")).await.unwrap().unwrap();
    assert_eq!((done.version, done.by.as_str()), (1, "staff-1"));
    let week = reports.week_figures("2026-W47").await.unwrap();
    assert_eq!((week.all.items, week.all.sentiment_negative, week.all.sentiment_neutral), (1, 0, 1));
    assert_eq!(week.types.get("logistics").map_or(0, |c| c.items), 0, "moved out of logistics");
    assert_eq!(week.types["price"].items, 1);
    assert_eq!((week.all.reviewed, week.all.disagreed), (1, 1), "staff read it differently from the model");
    // The same correction again (a retry after the first went through) moves nothing.
    correct_feedback(corrections, &item, &to_price, "staff-1", at("2026-11-20T00:01:00Z")).await.unwrap();
    let again = reports.week_figures("2026-W47").await.unwrap();
    assert_eq!((again.all.sentiment_neutral, again.types["price"].items), (1, 1));
    assert_eq!((again.all.reviewed, again.all.disagreed), (1, 1), "reviewed once, however often corrected");
    // A stale read is refused.
    let examples =
        feedback::insights::corrections::labelled_examples(corrections, &["2026-11".to_owned()]).await.unwrap();
    assert!(!corrections.save_correction(&item, &to_price, &done, &[], 0, &examples[0]).await.unwrap());
    // Corrected again: invalid after all; everything it counted goes.
    let invalid = Correction { invalid: Some(true), ..Default::default() };
    let third =
        correct_feedback(corrections, &item, &invalid, "staff-2", at("2026-11-21T00:00:00Z")).await.unwrap().unwrap();
    assert_eq!(third.version, 3);
    let after = reports.week_figures("2026-W47").await.unwrap();
    assert_eq!((after.all.items, after.all.sentiment_neutral, after.types["price"].items), (0, 0, 0));
    assert_eq!((after.all.reviewed, after.all.disagreed), (1, 1));
    // Staff take it all back: as the model read it after all, so no longer a disagreement.
    let back = Correction {
        sentiment: Some(Polarity::Negative),
        issue_types: Some(vec!["logistics".into()]),
        invalid: Some(false),
        ..Default::default()
    };
    correct_feedback(corrections, &item, &back, "staff-1", at("2026-12-01T00:00:00Z")).await.unwrap().unwrap();
    let agreed = reports.week_figures("2026-W47").await.unwrap();
    assert_eq!((agreed.all.items, agreed.types["logistics"].items, agreed.types["price"].items), (1, 1, 0));
    assert_eq!((agreed.all.reviewed, agreed.all.disagreed), (1, 0), "the model was right after all");
    // Each correction is a labelled example with the model's reading and the text; the export
    // keeps the latest of each item, whichever month it was made in.
    let months = ["2026-11".to_owned(), "2026-12".to_owned()];
    let examples = feedback::insights::corrections::labelled_examples(corrections, &months).await.unwrap();
    assert_eq!(examples.len(), 1, "{examples:?}");
    let latest = &examples[0];
    assert_eq!((latest.reference.as_str(), latest.kind.as_str(), latest.version), ("message~c-cr~m-1", "message", 4));
    assert_eq!((latest.week.as_str(), latest.text.as_deref()), ("2026-W47", Some("快递一周还没到，太慢了")));
    assert_eq!(
        (latest.model.as_ref().map(|m| m.sentiment), latest.staff.sentiment, latest.disagrees()),
        (Some(Polarity::Negative), Polarity::Negative, Some(false))
    );
    assert_eq!(latest.model_version.as_deref(), Some(feedback::analysis::model_version()));
    let november = feedback::insights::corrections::labelled_examples(corrections, &months[..1]).await.unwrap();
    assert_eq!((november[0].version, november[0].staff.counts, november[0].disagrees()), (3, false, Some(true)));
    let duplicate = FeedbackRef::Message { conversation_id: "c-cr".into(), message_id: "m-2".into() };
    assert!(corrections.countable(&duplicate).await.unwrap().is_none(), "a repeat counted nothing: nothing to correct");
    assert!(corrections.countable(&FeedbackRef::Rating { conversation_id: "c-none".into() }).await.unwrap().is_none());
}

/// The research panel: only a contact with research consent is a member; an invitation is queued
/// as a follow-up (with the member's locale) and marked, once; a response is kept once and read
/// back as it was written.
pub async fn surveys(
    store: &impl feedback::followups::survey::SurveyStore,
    contacts: &impl ContactStore,
    follow_ups: &impl FollowUpStore,
    links: &impl LinkStore,
    analysis: &impl AnalysisStore,
) {
    use feedback::analysis::sentiment::Polarity;
    use feedback::followups::survey::{Answer, AnswerValue, SurveyResponse, analyse_response, invitation_key};
    let now = at("2026-12-01T02:00:00Z");
    let member = ContactDetails {
        consent: Consent { email: true, sms: false, research: true },
        locale: "en".into(),
        ..contact("u-panel")
    };
    contacts.put_contact(&member).await.unwrap();
    contacts.put_contact(&contact("u-out")).await.unwrap();
    assert_eq!(store.panel_member("u-panel").await.unwrap(), Some(Some("en".to_owned())));
    assert_eq!(store.panel_member("u-out").await.unwrap(), None, "no research consent");
    assert_eq!(store.panel_member("u-nobody").await.unwrap(), None);
    let leaving = ContactDetails { customer_id: "u-leaving".into(), ..member.clone() };
    contacts.put_contact(&leaving).await.unwrap();
    assert!(store.panel_member("u-leaving").await.unwrap().is_some());
    links.opt_out("u-leaving", now).await.unwrap();
    assert_eq!(store.panel_member("u-leaving").await.unwrap(), None, "unsubscribed from everything");

    assert!(store.invite("delivery-2026-12", "u-panel", Some("en"), now).await.unwrap());
    assert!(!store.invite("delivery-2026-12", "u-panel", Some("en"), now).await.unwrap(), "once");
    let key = invitation_key("delivery-2026-12", "u-panel");
    let due = follow_ups.due(now + minutes(1), 72).await.unwrap();
    let queued: Vec<_> = due.iter().filter(|f| f.conversation_id.as_str() == key).collect();
    assert_eq!(queued.len(), 1, "{due:?}");
    assert_eq!(
        (queued[0].kind, queued[0].customer_id.as_str(), queued[0].locale.as_deref()),
        (FollowUpKind::Survey, "u-panel", Some("en"))
    );
    assert_eq!(links.follow_up_of(&key).await.unwrap(), Some(("u-panel".to_owned(), Some("en".to_owned()))));

    let response = SurveyResponse {
        survey_id: "delivery-2026-12".into(),
        customer_id: "u-panel".into(),
        answers: vec![
            Answer { question: "overall".into(), value: AnswerValue::Stars { stars: 2 } },
            Answer { question: "matters".into(), value: AnswerValue::Choice { option: "speed".into() } },
            Answer {
                question: "improve".into(),
                value: AnswerValue::Text { text: "快递太慢了，一周还没到".into(), analysis: None },
            },
        ],
        answered_at: now,
    };
    assert!(!store.answered("delivery-2026-12", "u-panel").await.unwrap());
    assert!(store.save_response(&response).await.unwrap());
    let again = SurveyResponse { answers: Vec::new(), ..response.clone() };
    assert!(!store.save_response(&again).await.unwrap(), "a second response is refused");
    assert!(store.answered("delivery-2026-12", "u-panel").await.unwrap());
    assert_eq!(store.survey_state("delivery-2026-12").await.unwrap(), (1, vec![response.clone()]));
    // The stream's analysis keeps the text answers' reading on the response (again: the same).
    let analysed = analyse_response(&mut Analyzer::new(), &response);
    analysis.analysed_answers(&analysed).await.unwrap();
    analysis.analysed_answers(&analysed).await.unwrap();
    let (_, kept) = store.survey_state("delivery-2026-12").await.unwrap();
    let AnswerValue::Text { analysis: Some(read), .. } = &kept[0].answers[2].value else { panic!("{kept:?}") };
    assert_eq!((read.sentiment, read.issue_types.contains(&"logistics".to_owned())), (Polarity::Negative, true));
    let gone = SurveyResponse { customer_id: "u-never".into(), ..analysed };
    analysis.analysed_answers(&gone).await.unwrap();
    assert_eq!(
        store.survey_state("delivery-2026-12").await.unwrap().1.len(),
        1,
        "nothing made of a response that is gone"
    );
    assert_eq!(store.survey_state("another").await.unwrap(), (0, Vec::new()));
}
