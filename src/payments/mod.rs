//! Payment gateways (Stripe Checkout, or the demo) and the processing of what they report.

pub mod demo;
pub mod events;
pub mod ingest;
pub mod stripe;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::Pence;
use crate::domain::StripePayment;

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

#[derive(Debug, thiserror::Error)]
#[error("the payment service did not answer as expected: {0}")]
pub struct GatewayError(pub String);

#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Starts a checkout and returns the page where the reader pays.
    async fn checkout(&self, request: &CheckoutRequest<'_>) -> Result<String, GatewayError>;
    /// The secret webhook signatures are checked against.
    fn webhook_secret(&self) -> &str;
    /// The demo gateway moves no money; pages say so.
    fn is_demo(&self) -> bool;
    /// The gateway's own record of payments since `since`, for reconciliation; `None` when it keeps none.
    async fn payments_since(&self, since: DateTime<Utc>) -> Result<Option<Vec<StripePayment>>, GatewayError>;
}
