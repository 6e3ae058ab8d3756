//! The DynamoDB adapter: one table (single-table design) whose keys are built only here.
//!
//! | entity       | pk                    | sk                   | gsi1pk                  | gsi1sk                                   |
//! |--------------|-----------------------|----------------------|-------------------------|------------------------------------------|
//! | rating       | `CONV#<conversation>` | `RATING`             | `FEEDBACK#<yyyy-mm-dd>` | `<created_at>#RATING#<conversation>`     |
//! | conversation | `CONV#<conversation>` | `META`               |                         |                                          |
//! | message      | `CONV#<conversation>` | `MSG#<message_id>`   |                         |                                          |
//! | its analysis | `CONV#<conversation>` | `ANALYSIS#MSG#<message_id>` |                  |                                          |
//! | trigger      | `CONV#<conversation>` | `TRIGGER#<category>` | `FEEDBACK#<yyyy-mm-dd>` | `<first_at>#TRIGGER#<conversation>#<category>` |
//! | follow-up    | `CONV#<conversation>` | `FOLLOWUP`           | `DUE#<yyyy-mm-ddThh>`   | `<due_at>#<conversation>`                |
//! | contact      | `CUST#<customer>`     | `CONTACT`            |                         |                                          |
//! | suppression  | `SUPPRESS#<address digest>` | `EMAIL`        |                         |                                          |
//! | profile      | `CUST#<customer>`     | `PROFILE`            |                         |                                          |
//! | order event  | `ORDEREVENT#<event id>` | `EVENT`            |                         |                                          |
//! | offer        | `CONV#<conversation>` | `OFFER`              |                         |                                          |
//! | offer budget | `OFFERBUDGET#<week>`  | `BUDGET`             |                         |                                          |
//! | aggregate    | `AGG#<week>#SHARD#<n>` | `TYPE#<issue type>` |                         |                                          |
//! | repeat mark  | `DEDUP#<customer>`    | `<text digest>`      |                         |                                          |
//! | report       | `REPORT#<week>`       | `REPORT`             |                         |                                          |
//! | scorecard row | `SCORE#<week>#<by>#<n>` | `<key>`            |                         |                                          |
//! | correction   | `CORRECTION#<yyyy-mm>` | `<feedback ref>`   |                         |                                          |
//!
//! `gsi1` is the time-bucketed index: one partition per UTC day of feedback, one per UTC hour of
//! follow-ups due (a cancelled or sent follow-up leaves it). `expires_at` (epoch seconds) is the
//! TTL attribute. See ARCHITECTURE.md.

mod aggregates;
mod contacts;
mod conversations;
mod corrections;
mod customer;
mod followups;
mod insights;
mod lease;
mod offers;
mod profiles;
mod ratings;
mod reports;
mod satisfaction;
mod scorecards;
mod surveys;

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

pub use aws_sdk_dynamodb::Client;
pub use contacts::DynamoContactStore;
pub use conversations::DynamoConversationStore;
pub use corrections::DynamoCorrectionStore;
pub use followups::DynamoFollowUpStore;
pub use insights::{DynamoAnalysisStore, read_stream_record};
pub use offers::DynamoOfferStore;
pub use profiles::{DynamoProfileStore, read_feedback_record};
pub use ratings::DynamoRatingStore;
pub use reports::DynamoReportStore;
pub use surveys::DynamoSurveyStore;

use feedback::errors::StoreError;

pub mod keys {
    use feedback::Timestamp;

    pub fn conversation(conversation_id: &str) -> String {
        format!("CONV#{conversation_id}")
    }
    pub const RATING: &str = "RATING";
    pub const META: &str = "META";
    pub const CONTACT: &str = "CONTACT";
    pub const OPT_OUT: &str = "OPTOUT";
    pub const FATIGUE: &str = "FATIGUE";

    pub fn customer(customer_id: &str) -> String {
        format!("CUST#{customer_id}")
    }
    pub const FOLLOW_UP: &str = "FOLLOWUP";

    /// An e-mail address that bounced for good or complained, by its digest.
    pub fn suppressed_email(address_digest: &str) -> String {
        format!("SUPPRESS#{address_digest}")
    }
    pub const SUPPRESSED_EMAIL: &str = "EMAIL";

    /// A customer's profile, in the customer's partition.
    pub const PROFILE: &str = "PROFILE";

    /// An order event folded into a profile (its marker, so it is folded once).
    pub fn order_event(event_id: &str) -> String {
        format!("ORDEREVENT#{event_id}")
    }
    pub const ORDER_EVENT: &str = "EVENT";

    /// A conversation's recovery-offer decision, in its partition.
    pub const OFFER: &str = "OFFER";

    /// What a week's offers have reserved of its budget.
    pub fn offer_budget(week: &str) -> String {
        format!("OFFERBUDGET#{week}")
    }
    pub const OFFER_BUDGET: &str = "BUDGET";

    pub fn message(message_id: &str) -> String {
        format!("MSG#{message_id}")
    }

    /// A message's entry in its conversation's log (`LOG#<sent_at>#<message_id>`): message ids do
    /// not sort by time, these do (RFC 3339 UTC with milliseconds is fixed width), so a reader
    /// reads the messages before one backwards, a few at a time. `LOG#` sorts before `OFFER`, out
    /// of the range the close's scorecard reads.
    pub fn turn(sent_at: &str, message_id: &str) -> String {
        format!("{TURN_PREFIX}{sent_at}#{message_id}")
    }
    pub const TURN_PREFIX: &str = "LOG#";

    /// A message's analysis, an item of its own beside the message: writing it costs the same
    /// however long the message is (an update of the message would be billed by its whole size).
    pub fn analysis_of(item_sk: &str) -> String {
        format!("ANALYSIS#{item_sk}")
    }

    pub fn trigger(category: &str) -> String {
        format!("TRIGGER#{category}")
    }

    /// A weekly aggregate shard (`AGG#2026-W48#SHARD#3`) and its items, one per issue type.
    pub fn aggregate(week: &str, shard: u8) -> String {
        format!("AGG#{week}#SHARD#{shard}")
    }

    pub fn aggregate_type(issue_type: &str) -> String {
        format!("TYPE#{issue_type}")
    }

    /// Texts a customer sent recently, by digest (to count a repeat once).
    pub fn repeat(customer_id: &str) -> String {
        format!("DEDUP#{customer_id}")
    }

    /// A customer counted in a week's aggregates (one item: the issue types it is counted under).
    pub fn seen(week: &str, customer_id: &str) -> String {
        format!("SEEN#{week}#{customer_id}")
    }

    /// The hour bucket (UTC) in which a follow-up falls due.
    pub fn follow_up_due_hour(due: Timestamp) -> String {
        let at = jiff::tz::TimeZone::UTC.to_datetime(due);
        format!("DUE#{}T{:02}", at.date(), at.hour())
    }

    /// Follow-ups queued when they were already long due (a close reported late): every run reads
    /// this partition too, so they are sent by the next run instead of falling outside its
    /// look-back (they are rare; a backfill's are sent as its runs come).
    pub const FOLLOW_UP_LATE: &str = "DUE#LATE";

    /// Later than this after its due time, a follow-up is queued as late.
    pub const FOLLOW_UP_LATE_AFTER_HOURS: i64 = 60;

    /// The due partition of a follow-up queued at `stored_at`.
    pub fn follow_up_bucket(due: Timestamp, stored_at: Timestamp) -> String {
        if due < stored_at - jiff::SignedDuration::from_hours(FOLLOW_UP_LATE_AFTER_HOURS) {
            FOLLOW_UP_LATE.to_owned()
        } else {
            follow_up_due_hour(due)
        }
    }

    pub fn follow_up_due_sort(due: Timestamp, conversation_id: &str) -> String {
        format!("{}#{conversation_id}", super::iso(due))
    }

    /// The day bucket of the feedback index, in UTC.
    pub fn feedback_day(at: Timestamp) -> String {
        feedback_date(jiff::tz::TimeZone::UTC.to_datetime(at).date())
    }

    pub fn feedback_date(date: jiff::civil::Date) -> String {
        format!("FEEDBACK#{date}")
    }

    /// The weekly report of an ISO week (`REPORT#2026-W47` / `REPORT`).
    pub fn report(week: &str) -> String {
        format!("REPORT#{week}")
    }
    pub const REPORT: &str = "REPORT";

    /// A shard of a week's scorecard by one dimension (`SCORE#2026-W48#intent#3`), one item per row.
    pub fn scorecard(week: &str, by: &str, shard: u8) -> String {
        format!("SCORE#{week}#{by}#{shard}")
    }

    pub fn feedback_sort(at: Timestamp, kind: &str, conversation_id: &str) -> String {
        format!("{}#{kind}#{conversation_id}", super::iso(at))
    }
}

/// Timestamps in items are RFC 3339 UTC with millisecond precision, so they sort as strings.
pub(crate) fn iso(at: feedback::Timestamp) -> String {
    feedback::time::iso_millis(at)
}

/// Weekly aggregates are kept this long (a bit over two years, for year-on-year comparisons).
pub(crate) const AGGREGATE_RETENTION_DAYS: u32 = 800;

/// The TTL (epoch seconds) of an item kept `days` from `at`: the time of storing, or a later time
/// the item is about (a follow-up's due time), never an old time the caller reported.
pub(crate) fn expiry(at: feedback::Timestamp, days: u32) -> i64 {
    at.as_second() + i64::from(days) * 86_400
}

/// Throttling, 5xx and transport failures are worth retrying; everything else is not.
pub(crate) fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match crate::sdk::classify_sdk_error(&err) {
        (true, what) => StoreError::Unavailable(what),
        (false, what) => StoreError::Failed(what),
    }
}

pub(crate) type Item = std::collections::HashMap<String, AttributeValue>;

/// Runs a transaction whose items may carry conditions: `Ok(None)` when it went through,
/// `Ok(Some(i))` when it was cancelled because the `i`th item's condition failed (and nothing
/// else). Any other cancellation (a conflicting transaction, throttling) is worth retrying.
pub(crate) async fn transact_on_conditions(
    client: &Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> Result<Option<usize>, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match client.transact_write_items().set_transact_items(Some(items)).send().await {
        Ok(_) => Ok(None),
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                let codes: Vec<Option<&str>> = t.cancellation_reasons().iter().map(|r| r.code()).collect();
                match codes.iter().position(|c| *c == Some("ConditionalCheckFailed")) {
                    Some(i) if codes.iter().all(|c| matches!(c, None | Some("None" | "ConditionalCheckFailed"))) => {
                        Ok(Some(i))
                    }
                    _ => Err(StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))),
                }
            }
            _ => Err(store_error(e)),
        },
    }
}

/// Whether an item exists (a consistent read of its key alone).
pub(crate) async fn exists(client: &Client, table: &str, pk: String, sk: &str) -> Result<bool, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(pk, sk)))
        .projection_expression("pk")
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    Ok(out.item.is_some())
}

/// A request the SDK's builder refused (a missing required field: a bug of ours, not retryable).
pub(crate) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Failed(e.to_string()))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// A number attribute, parsed (none when absent, not a number, or out of `T`'s range).
pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// Puts `item` unless an item with its key exists: `Ok(None)` when written, `Ok(Some(existing))`
/// otherwise (read from the failed condition, so no second round trip).
pub(crate) async fn put_new(client: &Client, table: &str, item: Item) -> Result<Option<Item>, StoreError> {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
    let put = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match put {
        Ok(_) => Ok(None),
        Err(e) => match e.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(ccf)) => {
                Ok(Some(ccf.item().cloned().unwrap_or_default()))
            }
            _ => Err(store_error(e)),
        },
    }
}

pub(crate) fn key(pk: String, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk.to_owned()))].into()
}

/// The table's client as a function builds it once per cold start: from the environment, with
/// its connection opened by one read (`warm_up`).
pub async fn warm_client(table: &str) -> Client {
    let client = crate::sdk::dynamodb_client(&crate::sdk::sdk_config().await);
    warm_up(&client, table).await;
    client
}

/// Opens the connection (DNS, TCP, TLS, credentials) during init, so the first customer request
/// does not pay for it. A read of a key that never exists; failures only log: init must not fail
/// because the network blinked.
pub async fn warm_up(client: &aws_sdk_dynamodb::Client, table: &str) {
    let read = client.get_item().table_name(table).set_key(Some(key("WARMUP".into(), "WARMUP"))).send();
    match tokio::time::timeout(Duration::from_secs(2), read).await {
        Ok(Ok(_)) => tracing::debug!("dynamodb connection warmed"),
        Ok(Err(e)) => {
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "dynamodb warm-up failed")
        }
        Err(_) => tracing::warn!("dynamodb warm-up timed out"),
    }
}
