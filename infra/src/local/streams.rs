//! Plays Lambda's DynamoDB event source mapping locally: reads a table's stream from moto (the
//! DynamoDB Streams JSON API, raw, so records keep the exact wire shape Lambda puts in its events)
//! and turns them into Lambda DynamoDB events.

use serde_json::{Value, json};

use crate::BoxError;

/// Calls one action of an AWS JSON-protocol service on moto (`target`: `DynamoDBStreams_20120810`,
/// `AmazonSQS`). moto does not check signatures; the credential scope tells it the service and
/// region.
pub async fn aws_json(
    endpoint: &str,
    region: &str,
    service: &str,
    target: &str,
    body: Value,
) -> Result<Value, BoxError> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let headers =
        [("content-type", "application/x-amz-json-1.0"), ("x-amz-target", target), ("authorization", auth.as_str())];
    let reply = crate::http::send("POST", &format!("{endpoint}/"), &headers, body.to_string()).await?;
    if reply.status != 200 {
        return Err(format!("{target}: {} {}", reply.status, String::from_utf8_lossy(&reply.body)).into());
    }
    Ok(serde_json::from_slice(&reply.body)?)
}

/// Calls one DynamoDB Streams action on moto.
pub async fn call(endpoint: &str, region: &str, action: &str, body: Value) -> Result<Value, BoxError> {
    aws_json(endpoint, region, "dynamodb", &format!("DynamoDBStreams_20120810.{action}"), body).await
}

/// A reader of every shard of one stream, from its beginning (TRIM_HORIZON, like the template's
/// `StartingPosition`), remembering where each shard is.
pub struct StreamReader {
    endpoint: String,
    region: String,
    pub stream_arn: String,
    /// (shard id, next iterator); `None` once a closed shard is read to its end.
    shards: Vec<(String, Option<String>)>,
}

impl StreamReader {
    pub fn new(endpoint: &str, region: &str, stream_arn: &str) -> Self {
        StreamReader {
            endpoint: endpoint.into(),
            region: region.into(),
            stream_arn: stream_arn.into(),
            shards: Vec::new(),
        }
    }

    async fn discover(&mut self) -> Result<(), BoxError> {
        let described =
            call(&self.endpoint, &self.region, "DescribeStream", json!({ "StreamArn": self.stream_arn })).await?;
        for shard in described["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
            let id = shard["ShardId"].as_str().unwrap_or_default().to_owned();
            if self.shards.iter().any(|(known, _)| *known == id) {
                continue;
            }
            let iterator = call(
                &self.endpoint,
                &self.region,
                "GetShardIterator",
                json!({ "StreamArn": self.stream_arn, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON" }),
            )
            .await?;
            self.shards.push((id, iterator["ShardIterator"].as_str().map(str::to_owned)));
        }
        Ok(())
    }

    /// Up to `limit` new records across the shards, in each shard's order, with Lambda's
    /// `eventSourceARN` added.
    pub async fn poll(&mut self, limit: usize) -> Result<Vec<Value>, BoxError> {
        self.discover().await?;
        let mut out = Vec::new();
        for (_, iterator) in &mut self.shards {
            let Some(it) = iterator.clone() else { continue };
            let got = call(&self.endpoint, &self.region, "GetRecords", json!({ "ShardIterator": it, "Limit": limit }))
                .await?;
            *iterator = got["NextShardIterator"].as_str().map(str::to_owned);
            for mut record in got["Records"].as_array().cloned().unwrap_or_default() {
                record["eventSourceARN"] = json!(self.stream_arn);
                out.push(record);
            }
        }
        Ok(out)
    }
}

/// A Lambda DynamoDB event of these records.
pub fn event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// Does a record pass an event source mapping filter pattern (the subset Lambda filters use here:
/// nested objects whose leaves are lists of allowed values)?
pub fn matches(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(k, p)| {
            // `[{"exists": true|false}]` on a field: whether the record has it (Lambda's syntax).
            if let Some(exists) = p.as_array().and_then(|a| a.first()).and_then(|o| o.get("exists")) {
                return exists.as_bool() == Some(!record[k].is_null());
            }
            matches(p, &record[k])
        }),
        Value::Array(allowed) => allowed.iter().any(|a| a == record),
        other => other == record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns_match_like_lambda() {
        let pattern =
            json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"entity": {"S": ["rating", "message"]}}}});
        let insert = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {"entity": {"S": "rating"}}}});
        let modify = json!({"eventName": "MODIFY", "dynamodb": {"NewImage": {"entity": {"S": "rating"}}}});
        let other = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {"entity": {"S": "trigger"}}}});
        assert!(matches(&pattern, &insert));
        assert!(!matches(&pattern, &modify));
        assert!(!matches(&pattern, &other));
        // `exists` works on leaf nodes only (Lambda's rule): the attribute's type key.
        let closed = json!({"dynamodb": {"NewImage": {"closed_at": {"S": [{"exists": true}]}}}});
        let meta = |closed: Option<&str>| {
            let mut image = json!({"entity": {"S": "conversation"}});
            if let Some(c) = closed {
                image["closed_at"] = json!({"S": c});
            }
            json!({"eventName": "MODIFY", "dynamodb": {"NewImage": image}})
        };
        assert!(matches(&closed, &meta(Some("2026-11-24T00:00:00Z"))));
        assert!(!matches(&closed, &meta(None)));
    }
}

/// How the local event source mapping delivers one poll's records to the function.
pub struct Delivery<'a> {
    pub host: &'a crate::local::lambda_host::FunctionHost,
    pub function_arn: &'a str,
    pub max_retries: u32,
    pub partial_batch_responses: bool,
    /// `(moto endpoint, region, queue URL)` of the on-failure destination.
    pub on_failure: Option<(&'a str, &'a str, &'a str)>,
}

/// What happened to a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub invocations: u32,
    /// Records given up on after the retries (sent to the on-failure queue, if any).
    pub discarded: usize,
}

/// Delivers records like Lambda's event source mapping: invoke; on a partial batch failure, retry
/// from the failed record; on a function error, retry the whole batch; after `max_retries`, send the
/// batch's position to the on-failure queue and skip the failed record (records after it get their
/// own retries).
pub async fn deliver(d: &Delivery<'_>, records: Vec<Value>) -> Delivered {
    let mut out = Delivered::default();
    let mut pending = records;
    let mut attempts = 0u32;
    while !pending.is_empty() {
        out.invocations += 1;
        let answer = d.host.invoke(bytes::Bytes::from(event(&pending).to_string())).await;
        let failed_from: Option<usize> = match answer {
            Ok(body) => {
                let response: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let failures = response["batchItemFailures"].as_array().cloned().unwrap_or_default();
                match failures.first().and_then(|f| f["itemIdentifier"].as_str()) {
                    Some(id) if d.partial_batch_responses => Some(
                        pending.iter().position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(id)).unwrap_or(0),
                    ),
                    _ => None,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "stream batch invocation failed");
                Some(0)
            }
        };
        let Some(from) = failed_from else { break };
        pending.drain(..from);
        attempts += 1;
        if attempts <= d.max_retries {
            tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempts.min(5)))).await;
            continue;
        }
        let given_up = pending.remove(0);
        out.discarded += 1;
        attempts = 0;
        tracing::error!(sequence = %given_up["dynamodb"]["SequenceNumber"], "stream record given up after retries");
        if let Some((endpoint, region, queue_url)) = d.on_failure {
            let sequence = given_up["dynamodb"]["SequenceNumber"].clone();
            let body = json!({
                "requestContext": { "condition": "RetryAttemptsExhausted", "functionArn": d.function_arn, "approximateInvokeCount": d.max_retries + 1 },
                "DDBStreamBatchInfo": {
                    "startSequenceNumber": sequence, "endSequenceNumber": sequence, "batchSize": 1,
                    "streamArn": given_up["eventSourceARN"],
                },
            });
            let sent = aws_json(
                endpoint,
                region,
                "sqs",
                "AmazonSQS.SendMessage",
                json!({ "QueueUrl": queue_url, "MessageBody": body.to_string() }),
            )
            .await;
            if let Err(e) = sent {
                tracing::error!(error = %e, "cannot send to the on-failure queue");
            }
        }
    }
    out
}
