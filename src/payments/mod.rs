//! Payment gateways (Stripe Checkout, or the demo) and the processing of what they report.

pub mod demo;
pub mod events;
pub mod ingest;
pub mod stripe;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Decline, Pence, StripePayment, Supporter};

/// What a checkout sells; Stripe's `metadata.kind` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purchase {
    Gift,
    MonthlySupport,
    Shares,
}

impl Purchase {
    /// `metadata.kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Purchase::Gift => "donation",
            Purchase::MonthlySupport => "supporter",
            Purchase::Shares => "shares",
        }
    }

    /// The metadata key that carries our own id of what is paid for.
    pub fn reference_key(self) -> &'static str {
        match self {
            Purchase::Gift | Purchase::MonthlySupport => "donation",
            Purchase::Shares => "application",
        }
    }
}

/// What the reader is about to pay for.
pub struct CheckoutRequest<'a> {
    /// Our id of it: a donation or a share application.
    pub reference: &'a str,
    pub purchase: Purchase,
    /// The fund it is for; shares are for none.
    pub campaign: Option<&'a str>,
    pub amount: Pence,
    pub email: &'a str,
    pub description: &'a str,
}

/// A checkout begun: where the reader pays, and the gateway's id of it (Stripe's Checkout
/// Session `cs_…`), which the way back to the thanks page names as `?session_id=`.
pub struct Checkout {
    pub url: String,
    pub session: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the payment service did not answer as expected: {0}")]
pub struct GatewayError(pub String);

/// A change a reader asks for on their page (SPEC §10). Stripe's API: the subscription's item
/// takes an inline monthly price with no proration; `pause_collection` with `behavior = void`
/// and `resumes_at`; an empty `pause_collection`; `cancel_at_period_end = true`, and `false`
/// again to keep the gift before the period ends (Stripe docs, "Cancel subscriptions":
/// reactivating a subscription set to cancel at the period's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonthlyChange {
    /// Each month's payment becomes this many pence from the next payment on.
    Amount(Pence),
    /// No payment is taken until then.
    Pause {
        resumes_at: DateTime<Utc>,
    },
    Resume,
    /// The subscription ends when the current period ends.
    Cancel,
    /// A cancellation at the period's end is withdrawn: the gift goes on.
    Keep,
}

impl MonthlyChange {
    /// The idempotency key of this change to `current`, asked at `now`: our subscription id, the
    /// change, a digest of our record of the subscription, and the second. A form sent twice in
    /// a moment sends one key, and Stripe makes the change once; a change asked after the record
    /// moved on, or later, has a key of its own, so Stripe never answers it with an old result.
    pub fn idempotency_key(&self, current: &Supporter, now: DateTime<Utc>) -> String {
        use sha2::{Digest, Sha256};
        let what = match self {
            MonthlyChange::Amount(amount) => format!("amount-{}", amount.0),
            MonthlyChange::Pause { resumes_at } => format!("pause-{}", resumes_at.timestamp()),
            MonthlyChange::Resume => "resume".to_owned(),
            MonthlyChange::Cancel => "cancel".to_owned(),
            MonthlyChange::Keep => "keep".to_owned(),
        };
        let record = Sha256::digest(format!("{current:?}"));
        let digest: String = record.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("monthly-{}-{what}-{digest}-{}", current.subscription, now.timestamp())
    }
}

#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Starts a checkout: the page where the reader pays, and the session's id.
    async fn checkout(&self, request: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError>;
    /// The secret webhook signatures are checked against.
    fn webhook_secret(&self) -> &str;
    /// The demo gateway moves no money; pages say so.
    fn is_demo(&self) -> bool;
    /// The gateway's own record of payments since `since`, for reconciliation; `None` when it keeps none.
    async fn payments_since(&self, since: DateTime<Utc>) -> Result<Option<Vec<StripePayment>>, GatewayError>;
    /// Asks the gateway to make `change` to `current`, with the idempotency key `key`. Records
    /// follow the gateway's `customer.subscription.updated` event, never this answer: Stripe sends
    /// it as a webhook and the result is empty; the demo gateway returns it (raw JSON), to be
    /// fed to the webhook's own code. Made at `now`.
    ///
    /// # Errors
    /// The gateway refused the change (Stripe answered 4xx or 5xx) or could not be reached; then
    /// nothing changed.
    async fn change_monthly(
        &self,
        current: &Supporter,
        change: MonthlyChange,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, GatewayError>;
    /// A page where the supporter updates their card or bank details (a Stripe Billing Portal
    /// session for `current.customer`, returning to `return_url`), as a URL to send them to.
    ///
    /// # Errors
    /// The gateway refused or could not be reached, or the record names no customer.
    async fn payment_method_page(&self, current: &Supporter, return_url: &str) -> Result<String, GatewayError>;
    /// What the bank said when the payment of a supporter's `invoice` failed (SPEC §11): the
    /// invoice does not say (API 2026-09-30), its PaymentIntent's `last_payment_error` does.
    /// `None` when nothing was said, or the gateway keeps no such record.
    async fn decline(&self, invoice: &str) -> Result<Option<Decline>, GatewayError>;
}
