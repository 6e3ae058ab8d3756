//! The customer's partition, `CUST#<customer>`, read with one Query: `CONTACT`, `OPTOUT`,
//! `FATIGUE` and `PROFILE`. The follow-up run and the profile both read it this way.

use aws_sdk_dynamodb::Client;

use super::{Item, get_n, get_s, keys, s, store_error};
use feedback::Timestamp;
use feedback::customers::{ContactPreferences, CustomerProfile};
use feedback::errors::StoreError;

/// Per channel: the `consent` map of `CONTACT`, and `OPTOUT`.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Channels {
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub sms: bool,
    /// `CONTACT` only: the research panel.
    #[serde(default)]
    pub research: bool,
}

/// `CONTACT` as a run reads it.
#[derive(serde::Deserialize)]
pub(crate) struct ContactRead {
    pub email: Option<String>,
    pub phone: Option<String>,
    #[serde(default)]
    pub consent: Channels,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
}

/// `FATIGUE`: when the customer was last sent a follow-up.
#[derive(serde::Deserialize)]
struct FatigueRead {
    last_follow_up_at: Option<String>,
}

fn read<T: serde::de::DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    serde_dynamo::from_item(item.clone()).map_err(|e| StoreError::Failed(format!("unreadable {what} item: {e}")))
}

/// What the customer's partition holds, read and typed.
pub(crate) struct CustomerPartition {
    pub contact: Option<ContactRead>,
    pub opted_out: Channels,
    pub last_follow_up_at: Option<Timestamp>,
    /// The profile and its version.
    pub profile: Option<(CustomerProfile, u64)>,
}

impl CustomerPartition {
    /// How the customer may be reached, without the addresses.
    pub fn preferences(&self) -> Option<ContactPreferences> {
        self.contact.as_ref().map(|c| ContactPreferences {
            has_email: c.email.is_some(),
            has_phone: c.phone.is_some(),
            consent_email: c.consent.email,
            consent_sms: c.consent.sms,
            opted_out_email: self.opted_out.email,
            opted_out_sms: self.opted_out.sms,
            time_zone: c.time_zone.clone(),
            locale: c.locale.clone(),
        })
    }
}

pub(crate) async fn read_customer(
    client: &Client,
    table: &str,
    customer_id: &str,
) -> Result<CustomerPartition, StoreError> {
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(keys::customer(customer_id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    let items = out.items.unwrap_or_default();
    let by_sk = |sk: &str| items.iter().find(|i| get_s(i, "sk") == Some(sk));
    let contact: Option<ContactRead> = by_sk(keys::CONTACT).map(|i| read(i, "contact")).transpose()?;
    let opted_out: Channels = by_sk(keys::OPT_OUT).map(|i| read(i, "opt-out")).transpose()?.unwrap_or_default();
    let fatigue: Option<FatigueRead> = by_sk(keys::FATIGUE).map(|i| read(i, "fatigue")).transpose()?;
    let profile = match by_sk(keys::PROFILE) {
        Some(item) => {
            let version = get_n(item, "version").unwrap_or(0);
            let value =
                item.get("profile").ok_or_else(|| StoreError::Failed("profile item without a profile".into()))?;
            let profile: CustomerProfile = serde_dynamo::from_attribute_value(value.clone())
                .map_err(|e| StoreError::Failed(format!("unreadable profile of {customer_id}: {e}")))?;
            Some((profile, version))
        }
        None => None,
    };
    Ok(CustomerPartition {
        contact,
        opted_out,
        last_follow_up_at: fatigue.and_then(|f| f.last_follow_up_at).and_then(|t| t.parse().ok()),
        profile,
    })
}
