//! The answer of a DynamoDB stream consumer (partial batch responses, `ReportBatchItemFailures`).

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

/// Where the event source mapping resumes: from the first record that failed (nothing before it
/// is delivered again), or nowhere when the whole batch went through.
pub fn resume_from(failed_from: Option<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = failed_from {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    response
}
