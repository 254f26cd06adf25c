//! The demo gateway: no money moves. "Pay (demo)" signs a Stripe-shaped event and feeds it
//! through exactly the code that a real webhook delivery runs; so do the changes a reader makes
//! to their monthly gift (a `customer.subscription.updated` as Stripe would send it), and the
//! end of a gift cancelled at the period's end, once that end has passed (the
//! `customer.subscription.deleted` that `jobs::demo_endings` sends, as Stripe would).

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Checkout, CheckoutRequest, GatewayError, MonthlyChange, PaymentGateway, Purchase};
use crate::domain::{Decline, Frequency, Pence, StripePayment, Supporter};
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
    /// The `created` (Unix seconds) of the last change's event: each change is told after the one
    /// before, as Stripe's events of successive changes are, even within one second.
    last_change: AtomicI64,
}

impl DemoGateway {
    pub fn new() -> DemoGateway {
        DemoGateway { secret: format!("whsec_demo_{}", uuid::Uuid::new_v4().simple()), last_change: AtomicI64::new(0) }
    }
}

impl Default for DemoGateway {
    fn default() -> DemoGateway {
        DemoGateway::new()
    }
}

#[async_trait]
impl PaymentGateway for DemoGateway {
    async fn checkout(&self, request: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError> {
        let reference = request.reference;
        Ok(Checkout { url: format!("/demo/checkout/{reference}"), session: format!("cs_demo_{reference}") })
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

    async fn change_monthly(
        &self,
        current: &Supporter,
        change: MonthlyChange,
        _key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, GatewayError> {
        // A second after `now` at the earliest: after the checkout's own events, which are at `now`.
        let earliest = now.timestamp() + 1;
        let created = self
            .last_change
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(earliest.max(last + 1)))
            .map_or(earliest, |last| earliest.max(last + 1));
        let at = DateTime::from_timestamp(created, 0).unwrap_or(now);
        Ok(vec![subscription_updated(current, change, at).to_string()])
    }

    async fn payment_method_page(&self, _current: &Supporter, _return_url: &str) -> Result<String, GatewayError> {
        Ok(DEMO_PAYMENT_METHOD_PAGE.to_owned())
    }

    /// No bank said anything: the notice uses its general wording.
    async fn decline(&self, _invoice: &str) -> Result<Option<Decline>, GatewayError> {
        Ok(None)
    }
}

/// Where the demo sends a supporter who asks to update their card or bank details.
pub const DEMO_PAYMENT_METHOD_PAGE: &str = "/account/monthly/demo-payment-method";

/// The `customer.subscription.updated` Stripe would send once `change` is made to `current` at
/// `now`: the whole subscription as it then stands (the item's price, `pause_collection`,
/// `cancel_at_period_end`, the current period's end), as Stripe's API describes it.
pub fn subscription_updated(current: &Supporter, change: MonthlyChange, now: DateTime<Utc>) -> Value {
    let event_id = format!("evt_demo_{}", uuid::Uuid::new_v4().simple());
    let mut event = template_event(include_str!("demo_events/subscription_updated.json"), &event_id, now.timestamp());
    let amount = match change {
        MonthlyChange::Amount(amount) => amount,
        _ => current.amount,
    };
    let paused_until = match change {
        MonthlyChange::Pause { resumes_at } => Some(resumes_at),
        MonthlyChange::Resume => None,
        _ => current.paused_until,
    };
    let cancel_at_period_end = match change {
        MonthlyChange::Cancel => true,
        MonthlyChange::Keep => false,
        _ => current.cancel_at_period_end,
    };
    let period_end =
        current.next_payment_at.or_else(|| now.checked_add_months(chrono::Months::new(1))).unwrap_or(now).timestamp();
    let subscription = &mut event["data"]["object"];
    subscription["id"] = json!(current.subscription);
    let started = current.started_at.timestamp();
    subscription["start_date"] = json!(started);
    subscription["created"] = json!(started);
    subscription["billing_cycle_anchor"] = json!(current.billing_cycle_anchor.map_or(started, |a| a.timestamp()));
    if let Some(customer) = &current.customer {
        subscription["customer"] = json!(customer);
    }
    subscription["metadata"] = json!({ "kind": Purchase::MonthlySupport.kind() });
    subscription["cancel_at_period_end"] = json!(cancel_at_period_end);
    subscription["cancel_at"] = if cancel_at_period_end { json!(period_end) } else { Value::Null };
    subscription["pause_collection"] = match paused_until {
        Some(until) => json!({ "behavior": "void", "resumes_at": until.timestamp() }),
        None => Value::Null,
    };
    let item = &mut subscription["items"]["data"][0];
    item["subscription"] = json!(current.subscription);
    item["current_period_end"] = json!(period_end);
    item["price"]["unit_amount"] = json!(amount.0);
    item["price"]["unit_amount_decimal"] = json!(amount.0.to_string());
    item["plan"]["amount"] = json!(amount.0);
    item["plan"]["amount_decimal"] = json!(amount.0.to_string());
    event
}

/// The `customer.subscription.deleted` Stripe sends when a gift cancelled at the period's end
/// (`current.cancel_at_period_end`) reaches it (`current.next_payment_at`, Stripe's
/// `current_period_end`): the subscription `canceled` at that moment, at the reader's request
/// (`cancellation_details.reason = cancellation_requested`), told at that moment. Its id is the
/// subscription's own, so that telling it twice (or from two instances) ends the gift once.
pub fn subscription_deleted(current: &Supporter) -> Value {
    let ends = current.next_payment_at.unwrap_or(current.started_at);
    let mut event = subscription_updated(current, MonthlyChange::Cancel, ends);
    event["id"] = json!(format!("evt_demo_{}_ended", current.subscription));
    event["type"] = json!("customer.subscription.deleted");
    let subscription = &mut event["data"]["object"];
    subscription["status"] = json!("canceled");
    subscription["canceled_at"] = json!(ends.timestamp());
    subscription["ended_at"] = json!(ends.timestamp());
    subscription["cancellation_details"]["reason"] = json!("cancellation_requested");
    event
}

/// The events Stripe would send when `bought` is paid at `now`, as raw JSON bodies: for a monthly
/// gift, the checkout, the first invoice and the subscription with its first period ending a
/// calendar month after `now`.
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
            // The subscription as it then stands, so the reader's page knows the next payment's day.
            let supporter = Supporter {
                subscription: format!("sub_demo_{id}"),
                customer: None,
                amount: bought.amount,
                status: crate::domain::SupporterStatus::Active,
                started_at: now,
                paused_until: None,
                cancel_at_period_end: false,
                next_payment_at: now.checked_add_months(chrono::Months::new(1)),
                billing_cycle_anchor: Some(now),
                ending: None,
                ended_at: None,
            };
            let mut period = subscription_updated(&supporter, MonthlyChange::Amount(bought.amount), now);
            period["id"] = json!(format!("evt_demo_{id}_subscription"));
            vec![started.to_string(), paid.to_string(), period.to_string()]
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
