//! The SES events consumer against moto: a complaint or a hard bounce stops e-mail follow-ups to
//! the address, a redelivery changes nothing, and what cannot be read is not retried.

use feedback::followups::FollowUpStore;
use feedback::followups::contacts::{Consent, ContactDetails, ContactStore};
use feedback_aws::dynamo::{DynamoContactStore, DynamoFollowUpStore};
use mail_events::App;
use serde_json::{Value, json};
use testkit::{fresh_feedback_table, unique};

fn sns(messages: &[Value]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| json!({"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": m.to_string()}}))
        .collect();
    json!({ "Records": records })
}

fn complaint(address: &str) -> Value {
    json!({"eventType": "Complaint", "mail": {"destination": [address]},
           "complaint": {"complainedRecipients": [{"emailAddress": address}], "complaintFeedbackType": "abuse"}})
}

fn bounce(address: &str, kind: &str) -> Value {
    json!({"eventType": "Bounce", "mail": {"destination": [address]},
           "bounce": {"bounceType": kind, "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}]}})
}

#[tokio::test]
async fn complaints_and_hard_bounces_stop_follow_up_email_to_that_address() {
    let (client, table) = fresh_feedback_table().await;
    let contacts = DynamoContactStore::new(client.clone(), &table);
    let follow_ups = DynamoFollowUpStore::new(client.clone(), &table);
    let (a, b, c) = (unique("u"), unique("u"), unique("u"));
    for customer in [&a, &b, &c] {
        contacts
            .put_contact(&ContactDetails {
                customer_id: customer.as_str().into(),
                email: Some(format!("{customer}@example.com")),
                phone: Some("+8613812345670".into()),
                consent: Consent { email: true, sms: true, research: false },
                time_zone: "Asia/Shanghai".into(),
                locale: "zh-CN".into(),
                updated_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            })
            .await
            .unwrap();
    }
    let app = App::new(client, &table);
    let event = sns(&[
        complaint(&format!("{a}@example.com")),
        bounce(&format!("{}@EXAMPLE.com", b.to_uppercase()), "Permanent"),
        bounce(&format!("{c}@example.com"), "Transient"),
        json!({"not": "an SES event"}),
    ]);
    assert_eq!(app.handle(event.clone()).await.unwrap(), json!({"suppressed": 2, "ignored": 1, "unreadable": 1}));
    // Redelivered (SNS delivers at least once): the same answer, nothing new.
    assert_eq!(app.handle(event).await.unwrap(), json!({"suppressed": 2, "ignored": 1, "unreadable": 1}));

    let facts = |customer: String| {
        let follow_ups = follow_ups.clone();
        async move { follow_ups.customer_facts(&customer).await.unwrap().unwrap() }
    };
    let (fa, fb, fc) = (facts(a).await, facts(b).await, facts(c).await);
    assert!(fa.opted_out_email && !fa.opted_out_sms, "a complaint stops e-mail only");
    assert!(fb.opted_out_email, "a hard bounce, whatever the case of the address");
    assert!(!fc.opted_out_email, "a soft bounce stops nothing");
}
