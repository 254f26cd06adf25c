//! The demo gateway: no money moves. "Pay (demo)" signs a Stripe-shaped event and feeds it
//! through exactly the code that a real webhook delivery runs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{CheckoutRequest, GatewayError, PaymentGateway};
use crate::jobs::reconcile::StripePayment;
use crate::store::Donation;

pub struct DemoGateway {
    /// Made afresh at each start: nobody outside this process can sign a demo event.
    secret: String,
}

impl DemoGateway {
    pub fn new() -> DemoGateway {
        DemoGateway { secret: format!("whsec_demo_{}", uuid::Uuid::new_v4().simple()) }
    }
}

impl Default for DemoGateway {
    fn default() -> DemoGateway {
        DemoGateway::new()
    }
}

#[async_trait]
impl PaymentGateway for DemoGateway {
    async fn checkout(&self, request: &CheckoutRequest<'_>) -> Result<String, GatewayError> {
        Ok(format!("/demo/checkout/{}", request.donation))
    }

    fn webhook_secret(&self) -> &str {
        &self.secret
    }

    fn is_demo(&self) -> bool {
        true
    }

    async fn payments_since(&self, _since: DateTime<Utc>) -> Result<Option<Vec<StripePayment>>, GatewayError> {
        Ok(None)
    }
}

/// The events Stripe would send when `donation` is paid at `now`, as raw JSON bodies.
pub fn paid_events(donation: &Donation, now: DateTime<Utc>) -> Vec<String> {
    let id = &donation.id;
    let created = now.timestamp();
    let metadata = |kind: &str| json!({ "kind": kind, "campaign": donation.campaign, "donation": id });
    let session = |template: &str, kind: &str| {
        let mut event = template_event(template, &format!("evt_demo_{id}_checkout"), created);
        let object = &mut event["data"]["object"];
        object["id"] = json!(format!("cs_demo_{id}"));
        object["created"] = json!(created);
        object["amount_total"] = json!(donation.amount.0);
        object["amount_subtotal"] = json!(donation.amount.0);
        object["client_reference_id"] = json!(id);
        object["customer_email"] = json!(donation.email);
        object["customer_details"]["email"] = json!(donation.email);
        object["metadata"] = metadata(kind);
        event
    };
    match donation.frequency.as_str() {
        "monthly" => {
            let mut started = session(include_str!("demo_events/supporter_started.json"), "supporter");
            started["data"]["object"]["subscription"] = json!(format!("sub_demo_{id}"));
            started["data"]["object"]["invoice"] = json!(format!("in_demo_{id}_1"));
            let mut paid = template_event(
                include_str!("demo_events/supporter_paid.json"),
                &format!("evt_demo_{id}_invoice_1"),
                created,
            );
            let invoice = &mut paid["data"]["object"];
            invoice["id"] = json!(format!("in_demo_{id}_1"));
            invoice["billing_reason"] = json!("subscription_create");
            invoice["amount_paid"] = json!(donation.amount.0);
            invoice["amount_due"] = json!(donation.amount.0);
            invoice["customer_email"] = json!(donation.email);
            invoice["parent"]["subscription_details"]["subscription"] = json!(format!("sub_demo_{id}"));
            invoice["parent"]["subscription_details"]["metadata"] = metadata("supporter");
            vec![started.to_string(), paid.to_string()]
        }
        _ => {
            let mut paid = session(include_str!("demo_events/gift_paid.json"), "donation");
            paid["data"]["object"]["payment_intent"] = json!(format!("pi_demo_{id}"));
            vec![paid.to_string()]
        }
    }
}

fn template_event(template: &str, id: &str, created: i64) -> Value {
    let mut event: Value = serde_json::from_str(template).unwrap_or_else(|_| json!({ "data": { "object": {} } }));
    event["id"] = json!(id);
    event["created"] = json!(created);
    event
}
