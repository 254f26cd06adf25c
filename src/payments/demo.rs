//! The demo gateway: no money moves. "Pay (demo)" signs a Stripe-shaped event and feeds it
//! through exactly the code that a real webhook delivery runs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{CheckoutRequest, GatewayError, PaymentGateway, Purchase};
use crate::domain::StripePayment;
use crate::domain::{Frequency, Pence};
use crate::store::{Donation, ShareApplication};

/// What a demo checkout sells: a donation or an application for shares.
#[derive(Clone, Debug)]
pub struct DemoPurchase {
    pub id: String,
    pub purchase: Purchase,
    pub campaign: Option<String>,
    pub amount: Pence,
    pub email: String,
    pub status: String,
}

impl From<Donation> for DemoPurchase {
    fn from(d: Donation) -> DemoPurchase {
        let monthly = d.frequency == Frequency::Monthly.as_str();
        DemoPurchase {
            id: d.id,
            purchase: if monthly { Purchase::MonthlySupport } else { Purchase::Gift },
            campaign: Some(d.campaign),
            amount: d.amount,
            email: d.email,
            status: d.status,
        }
    }
}

impl From<ShareApplication> for DemoPurchase {
    fn from(a: ShareApplication) -> DemoPurchase {
        DemoPurchase {
            id: a.id,
            purchase: Purchase::Shares,
            campaign: None,
            amount: a.amount,
            email: a.email,
            status: a.status,
        }
    }
}

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
        Ok(format!("/demo/checkout/{}", request.reference))
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

/// The events Stripe would send when `bought` is paid at `now`, as raw JSON bodies.
pub fn paid_events(bought: &DemoPurchase, now: DateTime<Utc>) -> Vec<String> {
    let id = &bought.id;
    let created = now.timestamp();
    let purchase = bought.purchase;
    let metadata = || {
        let mut metadata = json!({ "kind": purchase.kind(), purchase.reference_key(): id });
        if let Some(campaign) = &bought.campaign {
            metadata["campaign"] = json!(campaign);
        }
        metadata
    };
    let session = |template: &str| {
        let mut event = template_event(template, &format!("evt_demo_{id}_checkout"), created);
        let object = &mut event["data"]["object"];
        object["id"] = json!(format!("cs_demo_{id}"));
        object["created"] = json!(created);
        object["amount_total"] = json!(bought.amount.0);
        object["amount_subtotal"] = json!(bought.amount.0);
        object["client_reference_id"] = json!(id);
        object["customer_email"] = json!(bought.email);
        object["customer_details"]["email"] = json!(bought.email);
        object["metadata"] = metadata();
        event
    };
    match purchase {
        Purchase::MonthlySupport => {
            let mut started = session(include_str!("demo_events/supporter_started.json"));
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
            invoice["amount_paid"] = json!(bought.amount.0);
            invoice["amount_due"] = json!(bought.amount.0);
            invoice["customer_email"] = json!(bought.email);
            invoice["parent"]["subscription_details"]["subscription"] = json!(format!("sub_demo_{id}"));
            invoice["parent"]["subscription_details"]["metadata"] = metadata();
            vec![started.to_string(), paid.to_string()]
        }
        Purchase::Gift | Purchase::Shares => {
            let mut paid = session(include_str!("demo_events/gift_paid.json"));
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
