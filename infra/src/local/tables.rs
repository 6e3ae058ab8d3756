//! Creates the template's DynamoDB tables (once; an existing table is left as it is).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

use crate::BoxError;
use crate::template::TableDef;

fn keys(schema: &[(String, String)]) -> Result<Vec<KeySchemaElement>, BoxError> {
    schema
        .iter()
        .map(|(name, ty)| {
            Ok(KeySchemaElement::builder().attribute_name(name).key_type(KeyType::from(ty.as_str())).build()?)
        })
        .collect()
}

/// Returns true when the table was created, false when it already existed.
pub async fn ensure_table(client: &Client, def: &TableDef, name: &str) -> Result<bool, BoxError> {
    let mut req = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for (attr, ty) in &def.attributes {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::from(ty.as_str()))
                .build()?,
        );
    }
    req = req.set_key_schema(Some(keys(&def.key_schema)?));
    for index in &def.global_indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(keys(&index.key_schema)?))
                .projection(
                    Projection::builder().projection_type(ProjectionType::from(index.projection.as_str())).build(),
                )
                .build()?,
        );
    }
    if let Some(view) = &def.stream_view_type {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(false),
        Err(e) => {
            return Err(
                format!("cannot create table {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)).into()
            );
        }
    }
    if let Some(attr) = &def.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(attr).enabled(true).build()?)
            .send()
            .await
            .map_err(|e| {
                format!("cannot enable TTL on {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
            })?;
    }
    Ok(true)
}
