//! `PUT /customers/{id}/contact`: parse the contact details, store them, answer with them masked.
//! Addresses never reach the logs.

use std::convert::Infallible;

use feedback::Timestamp;
use feedback::config::{ConfigError, Env};
use feedback::followups::contacts::{CONTACT_BODY_MAX_BYTES, ContactDetails, ContactReceipt, ContactStore};
use feedback::validate::InputError;
use feedback::validate::check_id;
use feedback_aws::dynamo::{self, DynamoContactStore};
use feedback_lambda::http::{json_body, json_response, path_parameter, refused, request_reference};
use feedback_lambda::problem::Problem;
use lambda_http::{Body, Request, Response};

pub struct App {
    store: DynamoContactStore,
}

impl App {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = Env::process().required("TABLE_NAME")?;
        let client = dynamo::warm_client(&table).await;
        Ok(Self::new(client, &table))
    }

    pub fn new(client: feedback_aws::dynamo::Client, table: &str) -> Self {
        App { store: DynamoContactStore::new(client, table) }
    }

    pub async fn handle(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let reference = request_reference(&req);
        let contact = match read_contact(&req, Timestamp::now()) {
            Ok(contact) => contact,
            // Field errors name the field and the rule, never echo the value.
            Err(e) => return Ok(refused(&Problem::from(e), &"invalid contact details", "contact")),
        };
        match self.store.put_contact(&contact).await {
            Ok(()) => {
                tracing::info!(
                    customer_id = %contact.customer_id, has_email = contact.email.is_some(), has_phone = contact.phone.is_some(),
                    consent_email = contact.consent.email, consent_sms = contact.consent.sms, "contact stored"
                );
                Ok(json_response(200, &ContactReceipt::new(&contact), &[]))
            }
            Err(e) => Ok(refused(&Problem::from_store(&e, &reference), &e, "contact")),
        }
    }
}

fn read_contact(req: &Request, now: Timestamp) -> Result<ContactDetails, InputError> {
    let customer_id = check_id("customer_id", path_parameter(req, "id").as_deref().unwrap_or(""))
        .map_err(|e| InputError::Invalid(vec![e]))?;
    ContactDetails::from_json(customer_id, json_body(req, CONTACT_BODY_MAX_BYTES)?, now)
}
