use aws_sdk_dynamodb::Client;
use serde::Serialize;

use super::{iso, key, keys, s, store_error};
use feedback::errors::StoreError;
use feedback::followups::contacts::{Consent, ContactDetails, ContactStore, address_digest};

/// `ContactStore` on the feedback table: `CUST#<customer>` / `CONTACT`. Opt-outs will live on
/// their own item, so a storefront re-sending contact details never undoes an unsubscribe.
#[derive(Clone)]
pub struct DynamoContactStore {
    client: Client,
    table: String,
}

impl DynamoContactStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[derive(Serialize)]
struct ContactItem<'a> {
    pk: String,
    sk: &'static str,
    entity: &'static str,
    customer_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    consent: Consent,
    time_zone: &'a str,
    locale: &'a str,
    updated_at: String,
}

impl ContactStore for DynamoContactStore {
    async fn put_contact(&self, c: &ContactDetails) -> Result<(), StoreError> {
        let item = ContactItem {
            pk: keys::customer(&c.customer_id),
            sk: keys::CONTACT,
            entity: "contact",
            customer_id: &c.customer_id,
            email: c.email.as_deref(),
            phone: c.phone.as_deref(),
            consent: c.consent,
            time_zone: &c.time_zone,
            locale: &c.locale,
            updated_at: iso(c.updated_at),
        };
        let item = serde_dynamo::to_item(item).map_err(|e| StoreError::Failed(format!("cannot map contact: {e}")))?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(store_error)?;
        Ok(())
    }

    async fn suppress_email(&self, address: &str, reason: &str, at: feedback::Timestamp) -> Result<(), StoreError> {
        let mut item = key(keys::suppressed_email(&address_digest(address)), keys::SUPPRESSED_EMAIL);
        item.insert("entity".into(), s("suppression"));
        item.insert("reason".into(), s(reason));
        item.insert("at".into(), s(iso(at)));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(store_error)?;
        Ok(())
    }
}
