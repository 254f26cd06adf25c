//! Stripe Checkout through async-stripe: one-off gifts, monthly support and shares, by card or Bacs Direct Debit.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionLineItemsPriceDataRecurring,
    CreateCheckoutSessionLineItemsPriceDataRecurringInterval, CreateCheckoutSessionSubscriptionData, ProductData,
};
use stripe_core::charge::ListCharge;
use stripe_shared::{Charge, ChargeStatus, CheckoutSessionMode};
use stripe_types::{Currency, RangeQueryTs};
use url::Url;

use super::{CheckoutRequest, GatewayError, PaymentGateway, Purchase};
use crate::config::StripeConfig;
use crate::domain::Pence;
use crate::domain::StripePayment;

/// Each call to Stripe gives up after this: a reader waiting on the donation form gets an
/// answer well before the page's own 30 s deadline.
const STRIPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct StripeGateway {
    client: Client,
    webhook_secret: String,
    public_base_url: Url,
}

impl StripeGateway {
    pub fn new(config: &StripeConfig, public_base_url: &Url) -> Result<StripeGateway, GatewayError> {
        let client = ClientBuilder::new(&config.secret_key)
            .url(config.api_base.as_str().trim_end_matches('/'))
            .timeout(STRIPE_TIMEOUT)
            .build()
            .map_err(|e| GatewayError(e.to_string()))?;
        Ok(StripeGateway {
            client,
            webhook_secret: config.webhook_secret.clone(),
            public_base_url: public_base_url.clone(),
        })
    }

    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_base_url.as_str().trim_end_matches('/'))
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn checkout(&self, request: &CheckoutRequest<'_>) -> Result<String, GatewayError> {
        let purchase = request.purchase;
        let monthly = purchase == Purchase::MonthlySupport;
        let mode = if monthly { CheckoutSessionMode::Subscription } else { CheckoutSessionMode::Payment };
        let mut metadata = HashMap::from([
            ("kind".to_owned(), purchase.kind().to_owned()),
            (purchase.reference_key().to_owned(), request.reference.to_owned()),
        ]);
        if let Some(campaign) = request.campaign {
            metadata.insert("campaign".to_owned(), campaign.to_owned());
        }
        let (thanks, back) = match purchase {
            Purchase::Shares => ("/join/thanks", "/join"),
            Purchase::Gift | Purchase::MonthlySupport => ("/donate/thanks", "/#donate"),
        };
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(Currency::GBP);
        price.unit_amount = Some(request.amount.0);
        price.product_data = Some(ProductData::new(request.description));
        if monthly {
            price.recurring = Some(CreateCheckoutSessionLineItemsPriceDataRecurring::new(
                CreateCheckoutSessionLineItemsPriceDataRecurringInterval::Month,
            ));
        }
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let mut create = CreateCheckoutSession::new()
            .mode(mode)
            .line_items(vec![item])
            .customer_email(request.email)
            .client_reference_id(request.reference)
            .metadata(metadata.clone())
            .allowed_payment_method_types(vec![
                CreateCheckoutSessionAllowedPaymentMethodTypes::Card,
                CreateCheckoutSessionAllowedPaymentMethodTypes::BacsDebit,
            ])
            .success_url(self.link(&format!("{thanks}?session_id={{CHECKOUT_SESSION_ID}}")))
            .cancel_url(self.link(back));
        if monthly {
            // Invoices carry the subscription's metadata, not the session's.
            let mut subscription = CreateCheckoutSessionSubscriptionData::new();
            subscription.metadata = Some(metadata);
            create = create.subscription_data(subscription);
        }
        // The same donation or application never opens two sessions, however often this is retried.
        let key =
            IdempotencyKey::new(format!("checkout-{}", request.reference)).map_err(|e| GatewayError(e.to_string()))?;
        let session = create
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(|e| GatewayError(e.to_string()))?;
        session.url.ok_or_else(|| GatewayError("the Checkout Session has no url".to_owned()))
    }

    fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    fn is_demo(&self) -> bool {
        false
    }

    async fn payments_since(&self, since: DateTime<Utc>) -> Result<Option<Vec<StripePayment>>, GatewayError> {
        let charges: Vec<Charge> = ListCharge::new()
            .created(RangeQueryTs::gte(since.timestamp()))
            .limit(100)
            .paginate()
            .stream(&self.client)
            .try_collect()
            .await
            .map_err(|e| GatewayError(e.to_string()))?;
        let payments = charges
            .into_iter()
            .filter(|c| c.status == ChargeStatus::Succeeded && c.currency == Currency::GBP)
            .map(|c| StripePayment {
                payment: c
                    .payment_intent
                    .as_ref()
                    .map(|pi| pi.id().as_str().to_owned())
                    .unwrap_or_else(|| c.id.as_str().to_owned()),
                amount: Pence(c.amount),
                refunded: Pence(c.amount_refunded),
                customer: c.customer.as_ref().map(|cus| cus.id().as_str().to_owned()),
                created: DateTime::from_timestamp(c.created, 0).unwrap_or_default(),
            })
            .collect();
        Ok(Some(payments))
    }
}
