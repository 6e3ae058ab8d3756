//! The contract suite on the in-memory fakes (the same suite runs on the DynamoDB adapters against
//! moto in `tests/tests/contract.rs`).

use fakes::{InMemory, contract};

#[tokio::test]
async fn ratings() {
    contract::ratings(&InMemory::default()).await;
}

#[tokio::test]
async fn conversations() {
    contract::conversations(&InMemory::default()).await;
}

#[tokio::test]
async fn closing_and_follow_up_queue() {
    let t = InMemory::default();
    contract::closing_and_follow_up_queue(&t, &t).await;
}

#[tokio::test]
async fn alert_leases() {
    contract::alert_leases(&InMemory::default()).await;
}

#[tokio::test]
async fn follow_ups() {
    let t = InMemory::default();
    contract::follow_ups(&t, &t, &t, &t, &t).await;
}

#[tokio::test]
async fn analysis_and_aggregates() {
    let t = InMemory::default();
    contract::analysis_and_aggregates(&t, &t, &t, &t).await;
}

#[tokio::test]
async fn reports_and_digest_leases() {
    contract::reports_and_digest_leases(&InMemory::default()).await;
}

#[tokio::test]
async fn profiles() {
    let t = InMemory::default();
    contract::profiles(&t, &t).await;
}

#[tokio::test]
async fn standing() {
    contract::standing(&InMemory::default()).await;
}

#[tokio::test]
async fn follow_up_holds() {
    let t = InMemory::default();
    contract::follow_up_holds(&t, &t).await;
}

#[tokio::test]
async fn surveys() {
    let t = InMemory::default();
    contract::surveys(&t, &t, &t, &t, &t).await;
}

#[tokio::test]
async fn apology_queue() {
    let t = InMemory::default();
    contract::apology_queue(&t, &t).await;
}

#[tokio::test]
async fn offers() {
    let t = InMemory::default();
    contract::offers(&t, &t).await;
}

#[tokio::test]
async fn feedback_and_payoff() {
    let t = InMemory::default();
    contract::feedback_and_payoff(&t, &t).await;
}

#[tokio::test]
async fn scorecards() {
    let t = InMemory::default();
    contract::scorecards(&t, &t, &t).await;
}

#[tokio::test]
async fn corrections() {
    let t = InMemory::default();
    contract::corrections(&t, &t, &t, &t).await;
}

#[tokio::test]
async fn growing_sets_stop() {
    contract::growing_sets_stop(&InMemory::default()).await;
}

#[tokio::test]
async fn earlier_is_bounded() {
    let t = InMemory::default();
    contract::earlier_is_bounded(&t, &t).await;
}
