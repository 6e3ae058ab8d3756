//! The contract suite on the DynamoDB adapters against moto: the same assertions the in-memory
//! fakes pass (`shared/fakes/tests/contract.rs`), so the fakes the use-case tests run on cannot
//! drift from the adapters. Each test gets a fresh table.

use fakes::contract;
use feedback::config::WeekSettings;
use feedback_aws::dynamo::{
    DynamoAnalysisStore, DynamoContactStore, DynamoConversationStore, DynamoFollowUpStore, DynamoRatingStore,
    DynamoReportStore,
};
use testkit::fresh_feedback_table;

struct Table {
    ratings: DynamoRatingStore,
    conversations: DynamoConversationStore,
    follow_ups: DynamoFollowUpStore,
    contacts: DynamoContactStore,
    analysis: DynamoAnalysisStore,
    reports: DynamoReportStore,
}

async fn table() -> Table {
    let (client, table) = fresh_feedback_table().await;
    let weeks = WeekSettings::default();
    Table {
        ratings: DynamoRatingStore::new(client.clone(), &table, 730),
        conversations: DynamoConversationStore::new(client.clone(), &table, 180).with_weeks(weeks.clone()),
        follow_ups: DynamoFollowUpStore::new(client.clone(), &table).with_weeks(weeks.clone()),
        contacts: DynamoContactStore::new(client.clone(), &table),
        analysis: DynamoAnalysisStore::new(client.clone(), &table, weeks.aggregate_shards),
        reports: DynamoReportStore::new(client, &table, weeks),
    }
}

#[tokio::test]
async fn ratings() {
    contract::ratings(&table().await.ratings).await;
}

#[tokio::test]
async fn conversations() {
    contract::conversations(&table().await.conversations).await;
}

#[tokio::test]
async fn closing_and_follow_up_queue() {
    let t = table().await;
    contract::closing_and_follow_up_queue(&t.conversations, &t.follow_ups).await;
}

#[tokio::test]
async fn alert_leases() {
    contract::alert_leases(&table().await.conversations).await;
}

#[tokio::test]
async fn follow_ups() {
    let t = table().await;
    contract::follow_ups(&t.conversations, &t.follow_ups, &t.contacts, &t.ratings, &t.follow_ups).await;
}

#[tokio::test]
async fn analysis_and_aggregates() {
    let t = table().await;
    contract::analysis_and_aggregates(&t.conversations, &t.ratings, &t.analysis, &t.reports).await;
}

#[tokio::test]
async fn reports_and_digest_leases() {
    contract::reports_and_digest_leases(&table().await.reports).await;
}

#[tokio::test]
async fn profiles() {
    let (client, table) = fresh_feedback_table().await;
    let contacts = feedback_aws::dynamo::DynamoContactStore::new(client.clone(), &table);
    contract::profiles(&feedback_aws::dynamo::DynamoProfileStore::new(client, &table), &contacts).await;
}

#[tokio::test]
async fn standing() {
    contract::standing(&table().await.conversations).await;
}

#[tokio::test]
async fn follow_up_holds() {
    let t = table().await;
    contract::follow_up_holds(&t.conversations, &t.follow_ups).await;
}

#[tokio::test]
async fn surveys() {
    let (client, table) = fresh_feedback_table().await;
    let follow_ups = feedback_aws::dynamo::DynamoFollowUpStore::new(client.clone(), &table);
    let contacts = feedback_aws::dynamo::DynamoContactStore::new(client.clone(), &table);
    let analysis = DynamoAnalysisStore::new(client.clone(), &table, 8);
    let store = feedback_aws::dynamo::DynamoSurveyStore::new(client, &table);
    contract::surveys(&store, &contacts, &follow_ups, &follow_ups, &analysis).await;
}

#[tokio::test]
async fn apology_queue() {
    let (client, table) = fresh_feedback_table().await;
    let follow_ups = feedback_aws::dynamo::DynamoFollowUpStore::new(client.clone(), &table);
    contract::apology_queue(&feedback_aws::dynamo::DynamoProfileStore::new(client, &table), &follow_ups).await;
}

#[tokio::test]
async fn offers() {
    let (client, table) = fresh_feedback_table().await;
    let reports = DynamoReportStore::new(client.clone(), &table, WeekSettings::default());
    contract::offers(&feedback_aws::dynamo::DynamoOfferStore::new(client, &table, 8), &reports).await;
}

#[tokio::test]
async fn feedback_and_payoff() {
    let (client, table) = fresh_feedback_table().await;
    let reports = DynamoReportStore::new(client.clone(), &table, WeekSettings::default());
    contract::feedback_and_payoff(&feedback_aws::dynamo::DynamoProfileStore::new(client, &table), &reports).await;
}

#[tokio::test]
async fn scorecards() {
    let t = table().await;
    contract::scorecards(&t.conversations, &t.ratings, &t.reports).await;
}

#[tokio::test]
async fn corrections() {
    let (client, table) = fresh_feedback_table().await;
    let weeks = WeekSettings::default();
    let t = Table {
        ratings: DynamoRatingStore::new(client.clone(), &table, 730),
        conversations: DynamoConversationStore::new(client.clone(), &table, 180).with_weeks(weeks.clone()),
        follow_ups: DynamoFollowUpStore::new(client.clone(), &table).with_weeks(weeks.clone()),
        contacts: DynamoContactStore::new(client.clone(), &table),
        analysis: DynamoAnalysisStore::new(client.clone(), &table, weeks.aggregate_shards),
        reports: DynamoReportStore::new(client.clone(), &table, weeks),
    };
    let store = feedback_aws::dynamo::DynamoCorrectionStore::new(client, &table);
    contract::corrections(&t.conversations, &t.analysis, &t.reports, &store).await;

    // `feedback export-corrections` writes what the suite corrected as training data, through the
    // SDK configured by the environment alone, as it would against AWS.
    let out = std::process::Command::new(testkit::bin_dir().join("feedback"))
        .args(["export-corrections", "--since", "2026-10", "--until", "2026-12"])
        .env("TABLE_NAME", &table)
        .env("AWS_ENDPOINT_URL", testkit::moto_url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("cargo build --workspace --bins first");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "the latest correction of the one corrected item: {lines:?}");
    assert_eq!((lines[0]["ref"].as_str(), lines[0]["version"].as_u64()), (Some("message~c-cr~m-1"), Some(4)));
    assert_eq!(lines[0]["text"], "快递一周还没到，太慢了");
    assert_eq!(
        (lines[0]["model"]["sentiment"].as_str(), lines[0]["staff"]["counts"].as_bool()),
        (Some("negative"), Some(true))
    );
}

#[tokio::test]
async fn growing_sets_stop() {
    contract::growing_sets_stop(&table().await.conversations).await;
}

#[tokio::test]
async fn earlier_is_bounded() {
    let t = table().await;
    contract::earlier_is_bounded(&t.conversations, &t.analysis).await;
}
