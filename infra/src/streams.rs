//! Plays Lambda's DynamoDB event source mapping locally: reads a table's stream from moto (the
//! DynamoDB Streams JSON API, raw, so records keep the exact wire shape Lambda puts in its events)
//! and turns them into Lambda DynamoDB events.

use serde_json::{Value, json};

use crate::BoxError;

/// Calls one DynamoDB Streams action on moto. moto does not check signatures; the credential scope
/// tells it the region.
pub async fn call(endpoint: &str, region: &str, action: &str, body: Value) -> Result<Value, BoxError> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/{region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
    );
    let headers = [
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", &format!("DynamoDBStreams_20120810.{action}")),
        ("authorization", auth.as_str()),
    ];
    let reply = crate::http::send("POST", &format!("{endpoint}/"), &headers, body.to_string()).await?;
    if reply.status != 200 {
        return Err(format!("{action}: {} {}", reply.status, String::from_utf8_lossy(&reply.body)).into());
    }
    Ok(serde_json::from_slice(&reply.body)?)
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
        Value::Object(fields) => fields.iter().all(|(k, p)| matches(p, &record[k])),
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
    }
}
