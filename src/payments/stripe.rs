//! Stripe Checkout through async-stripe: one-off gifts, monthly support and shares, by card or Bacs Direct Debit.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice_payment::ListInvoicePayment;
use stripe_billing::subscription::{
    RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionItemsPriceData,
    UpdateSubscriptionItemsPriceDataRecurring, UpdateSubscriptionItemsPriceDataRecurringInterval,
    UpdateSubscriptionPauseCollection, UpdateSubscriptionPauseCollectionBehavior, UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionLineItemsPriceDataRecurring,
    CreateCheckoutSessionLineItemsPriceDataRecurringInterval, CreateCheckoutSessionSubscriptionData, ProductData,
};
use stripe_core::charge::ListCharge;
use stripe_shared::{Charge, ChargeStatus, CheckoutSessionMode, Subscription};
use stripe_types::{Currency, RangeQueryTs};
use url::Url;

use super::{Checkout, CheckoutRequest, GatewayError, MonthlyChange, PaymentGateway, Purchase};
use crate::config::StripeConfig;
use crate::domain::{Decline, DeclineReason, Pence, StripePayment, Supporter};

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

    /// The subscription's one item and the product its price belongs to: a new inline price
    /// must name the product (Stripe's `items[].price_data.product`).
    async fn item_and_product(&self, subscription: &str) -> Result<(String, String), GatewayError> {
        let found = RetrieveSubscription::new(subscription).send(&self.client).await.map_err(refused)?;
        let item = found
            .items
            .data
            .first()
            .ok_or_else(|| GatewayError(format!("the subscription {subscription} has no item")))?;
        Ok((item.id.as_str().to_owned(), item.price.product.id().as_str().to_owned()))
    }
}

fn refused(e: stripe::StripeError) -> GatewayError {
    GatewayError(e.to_string())
}

fn idempotent(key: &str) -> Result<RequestStrategy, GatewayError> {
    Ok(RequestStrategy::Idempotent(IdempotencyKey::new(key).map_err(|e| GatewayError(e.to_string()))?))
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn checkout(&self, request: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError> {
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
        let url = session.url.ok_or_else(|| GatewayError("the Checkout Session has no url".to_owned()))?;
        Ok(Checkout { url, session: session.id.as_str().to_owned() })
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

    async fn change_monthly(
        &self,
        current: &Supporter,
        change: MonthlyChange,
        key: &str,
        _now: DateTime<Utc>,
    ) -> Result<Vec<String>, GatewayError> {
        let subscription = current.subscription.as_str();
        let update = UpdateSubscription::new(subscription);
        let request = match change {
            MonthlyChange::Amount(amount) => {
                // Stripe: "Changing a subscription's price" — the item keeps its id, takes an
                // inline monthly price, and no proration is made: the new amount starts with
                // the next payment.
                let (item_id, product) = self.item_and_product(subscription).await?;
                let mut price = UpdateSubscriptionItemsPriceData::new(
                    Currency::GBP,
                    product,
                    UpdateSubscriptionItemsPriceDataRecurring::new(
                        UpdateSubscriptionItemsPriceDataRecurringInterval::Month,
                    ),
                );
                price.unit_amount = Some(amount.0);
                let mut item = UpdateSubscriptionItems::new();
                item.id = Some(item_id);
                item.price_data = Some(price);
                item.quantity = Some(1);
                update.items(vec![item]).proration_behavior(UpdateSubscriptionProrationBehavior::None).build()
            }
            MonthlyChange::Pause { resumes_at } => {
                let mut pause = UpdateSubscriptionPauseCollection::new(UpdateSubscriptionPauseCollectionBehavior::Void);
                pause.resumes_at = Some(resumes_at.timestamp());
                update.pause_collection(pause).build()
            }
            MonthlyChange::Resume => {
                // Stripe resumes collection when `pause_collection` is set to the empty string,
                // which the generated builder cannot say: the same request, with that field.
                let mut request = update.build();
                request.body = Some("pause_collection=".to_owned());
                request
            }
            MonthlyChange::Cancel => update.cancel_at_period_end(true).build(),
            MonthlyChange::Keep => update.cancel_at_period_end(false).build(),
        };
        request
            .customize::<Subscription>()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .await
            .map_err(refused)?;
        // Our records change when Stripe's `customer.subscription.updated` arrives.
        Ok(Vec::new())
    }

    async fn payment_method_page(&self, current: &Supporter, return_url: &str) -> Result<String, GatewayError> {
        let customer = current
            .customer
            .as_deref()
            .ok_or_else(|| GatewayError(format!("no Stripe customer is known for {}", current.subscription)))?;
        // A portal session lasts minutes: each visit needs a new one, so no idempotency key
        // (a replayed answer could be an expired session).
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .send(&self.client)
            .await
            .map_err(refused)?;
        Ok(session.url)
    }

    /// `GET /v1/invoice_payments?invoice=…` with each PaymentIntent expanded: the newest
    /// attempt's `last_payment_error` (Stripe docs: "Invoice Payments", "PaymentIntent").
    async fn decline(&self, invoice: &str) -> Result<Option<Decline>, GatewayError> {
        let payments = ListInvoicePayment::new()
            .invoice(invoice)
            .expand(vec!["data.payment.payment_intent".to_owned()])
            .send(&self.client)
            .await
            .map_err(|e| GatewayError(e.to_string()))?;
        let newest = payments
            .data
            .iter()
            .filter_map(|p| p.payment.payment_intent.as_ref().and_then(|pi| pi.as_object()))
            .filter_map(|pi| pi.last_payment_error.as_deref().map(|error| (pi, error)))
            .max_by_key(|(pi, _)| pi.created);
        Ok(newest.map(|(pi, error)| {
            let method = error.payment_method_type.as_deref().or(pi.payment_method_types.first().map(String::as_str));
            let code = error.code.as_ref().map(|c| c.as_str().to_owned());
            let reason = DeclineReason::from_stripe(code.as_deref(), error.decline_code.as_deref());
            let said = [code.as_deref(), error.decline_code.as_deref(), error.message.as_deref()];
            let detail = said.into_iter().flatten().collect::<Vec<_>>().join(": ");
            Decline {
                reason,
                direct_debit: method == Some("bacs_debit"),
                detail: (!detail.is_empty()).then_some(detail),
            }
        }))
    }
}
