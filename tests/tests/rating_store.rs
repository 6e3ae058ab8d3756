//! The DynamoDB rating store and the submission rule, against moto through the real SDK.

use feedback::Timestamp;
use feedback::conversations::Channel;
use feedback::ratings::RatingStore;
use feedback::ratings::{Rating, RatingSubmission, SubmitRatingError, Submitted, submit_rating};
use feedback_aws::dynamo::DynamoRatingStore;
use testkit::{fresh_feedback_table, unique};

fn submission(conversation_id: &str, stars: u8, comment: Option<&str>) -> RatingSubmission {
    RatingSubmission {
        conversation_id: conversation_id.into(),
        customer_id: "u-1".into(),
        stars,
        comment: comment.map(str::to_owned),
        channel: Channel::Wechat,
        served_by: None,
        locale: Some("zh-CN".into()),
        issue_types: vec!["logistics".into()],
        order_value_minor: Some(12_990),
        via_follow_up: false,
    }
}

fn now() -> Timestamp {
    "2026-11-25T08:30:00.123Z".parse().unwrap()
}

#[tokio::test]
async fn a_stored_rating_reads_back_exactly_and_is_indexed_by_day() {
    let (client, table) = fresh_feedback_table().await;
    let store = DynamoRatingStore::new(client.clone(), &table, 730);
    let conv = unique("c");
    let rating = Rating::new(submission(&conv, 2, Some("物流太慢")), "01TESTID".into(), now(), Some("k1".into()));
    assert_eq!(store.insert_rating(&rating).await.unwrap(), None);
    assert_eq!(store.rating_of_conversation(&conv).await.unwrap(), Some(rating.clone()));

    let raw = client
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{conv}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("RATING".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(raw["gsi1pk"].as_s().unwrap(), "FEEDBACK#2026-11-25");
    assert!(raw["gsi1sk"].as_s().unwrap().starts_with("2026-11-25T08:30:00.123Z#RATING#"));
    let expires: i64 = raw["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(expires, now().as_second() + 730 * 86_400);
}

#[tokio::test]
async fn a_second_insert_for_the_same_conversation_writes_nothing_and_returns_the_first() {
    let (client, table) = fresh_feedback_table().await;
    let store = DynamoRatingStore::new(client, &table, 730);
    let conv = unique("c");
    let first = Rating::new(submission(&conv, 5, None), "01FIRST".into(), now(), None);
    let second = Rating::new(submission(&conv, 1, Some("changed my mind")), "01SECOND".into(), now(), None);
    assert_eq!(store.insert_rating(&first).await.unwrap(), None);
    assert_eq!(store.insert_rating(&second).await.unwrap(), Some(first.clone()));
    assert_eq!(store.rating_of_conversation(&conv).await.unwrap(), Some(first));
}

#[tokio::test]
async fn retries_replay_and_different_ratings_conflict() {
    let (client, table) = fresh_feedback_table().await;
    let store = DynamoRatingStore::new(client, &table, 730);
    let conv = unique("c");
    let created = submit_rating(&store, submission(&conv, 2, Some("慢")), Some("key-1".into()), now()).await.unwrap();
    let Submitted::Created(original) = created else { panic!("first submission must create") };

    // Same key, same content: the original comes back.
    let again = submit_rating(&store, submission(&conv, 2, Some("慢")), Some("key-1".into()), now()).await.unwrap();
    assert_eq!(again, Submitted::Replayed(original.clone()));
    // No key, same content (a client without idempotency keys retrying): also the original.
    let again = submit_rating(&store, submission(&conv, 2, Some("慢")), None, now()).await.unwrap();
    assert_eq!(again, Submitted::Replayed(original.clone()));
    // Same key, different content: the key was reused.
    let reused = submit_rating(&store, submission(&conv, 3, None), Some("key-1".into()), now()).await;
    assert!(matches!(reused, Err(SubmitRatingError::IdempotencyKeyReused { .. })), "{reused:?}");
    // A different rating: conflict, naming the existing one.
    let conflict = submit_rating(&store, submission(&conv, 5, None), Some("key-2".into()), now()).await;
    assert!(
        matches!(conflict, Err(SubmitRatingError::AlreadyRated { ref existing_id, .. }) if *existing_id == original.id)
    );
    assert_eq!(store.rating_of_conversation(&conv).await.unwrap(), Some(original));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_submissions_store_one_rating_and_all_get_its_id() {
    let (client, table) = fresh_feedback_table().await;
    let store = DynamoRatingStore::new(client, &table, 730);
    let conv = unique("c");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let conv = conv.clone();
            tokio::spawn(async move { submit_rating(&store, submission(&conv, 4, Some("ok")), None, now()).await })
        })
        .collect();
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        created += matches!(outcome, Submitted::Created(_)) as usize;
        ids.insert(outcome.rating().id.clone());
    }
    assert_eq!(created, 1, "exactly one request writes");
    assert_eq!(ids.len(), 1, "every caller sees the same rating id");
}
