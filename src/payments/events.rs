//! Reads a verified Stripe event and says what it means for the fund.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use stripe_shared::{
    CheckoutSession, CheckoutSessionMode, CheckoutSessionPaymentStatus, Dispute, DisputeStatus, Invoice,
    InvoicePayment, Subscription, SubscriptionStatus,
};
use stripe_types::Currency;
use stripe_webhook::{Event, EventObject};

use crate::domain::{
    DisputeStage, Ending, PaymentEvent, PaymentFailure, Pence, ReceivedEvent, SubscriptionChange, SubscriptionTerms,
    SupporterStatus, today_in,
};

pub fn received(event: &Event, payload: &str) -> ReceivedEvent {
    ReceivedEvent {
        id: event.id.as_str().to_owned(),
        kind: event.type_.as_str().to_owned(),
        created: instant(event.created),
        payload: payload.to_owned(),
    }
}

/// The meaning of `event`; a payment counts on the day, in `zone`, when Stripe says it succeeded.
pub fn interpret(event: &Event, zone: Tz) -> PaymentEvent {
    let counts_on = today_in(zone, instant(event.created));
    match &event.data.object {
        EventObject::CheckoutSessionCompleted(session) | EventObject::CheckoutSessionAsyncPaymentSucceeded(session) => {
            checkout(session, counts_on)
        }
        EventObject::CheckoutSessionAsyncPaymentFailed(session) => match kind(session.metadata.as_ref()) {
            Some("donation") => PaymentEvent::GiftFailed {
                session: session.id.as_str().to_owned(),
                donation: donation_ref(session.metadata.as_ref(), session.client_reference_id.as_deref()),
            },
            _ => unmatched("a Direct Debit that is not a fighting-fund gift failed"),
        },
        EventObject::InvoicePaid(invoice) => supporter_invoice(invoice, counts_on),
        EventObject::InvoicePaymentPaid(paid) => invoice_payment(paid),
        EventObject::InvoicePaymentFailed(invoice) => payment_failed(invoice, zone),
        EventObject::CustomerSubscriptionUpdated(sub) | EventObject::CustomerSubscriptionDeleted(sub) => {
            subscription_changed(sub)
        }
        EventObject::ChargeRefunded(charge) => match &charge.payment_intent {
            Some(pi) if charge.currency == Currency::GBP => PaymentEvent::Refunded {
                payment: pi.id().as_str().to_owned(),
                refunded_total: Pence(charge.amount_refunded),
                refunded_on: counts_on,
            },
            _ => unmatched("a refund of a charge without a PaymentIntent, or not in pounds"),
        },
        // An inquiry moves no money; Stripe takes it only for a dispute proper (SPEC §5).
        EventObject::ChargeDisputeCreated(dispute) if is_inquiry(&dispute.status) => PaymentEvent::Ignored,
        EventObject::ChargeDisputeCreated(dispute) => disputed(dispute, DisputeStage::Opened),
        EventObject::ChargeDisputeClosed(dispute) => match dispute.status {
            DisputeStatus::Won => disputed(dispute, DisputeStage::Won),
            DisputeStatus::Lost => disputed(dispute, DisputeStage::Lost),
            _ => PaymentEvent::Ignored,
        },
        _ => PaymentEvent::Ignored,
    }
}

fn checkout(session: &CheckoutSession, counts_on: chrono::NaiveDate) -> PaymentEvent {
    let metadata = session.metadata.as_ref();
    let donation = donation_ref(metadata, session.client_reference_id.as_deref());
    if session.currency.as_ref().is_some_and(|c| *c != Currency::GBP) {
        return unmatched("a payment not in pounds");
    }
    // A session without a total is not money: £0 fails the amount check (SPEC §5).
    let amount = Pence(session.amount_total.unwrap_or(0));
    match (kind(metadata), &session.mode) {
        (Some("donation"), CheckoutSessionMode::Payment) => match session.payment_status {
            CheckoutSessionPaymentStatus::Paid => PaymentEvent::GiftPaid {
                payment: payment_of(session),
                session: session.id.as_str().to_owned(),
                amount,
                donation,
                counts_on,
                email: session
                    .customer_details
                    .as_ref()
                    .and_then(|details| details.email.clone())
                    .or_else(|| session.customer_email.clone()),
                customer: session.customer.as_ref().map(|c| c.id().as_str().to_owned()),
            },
            CheckoutSessionPaymentStatus::Unpaid => PaymentEvent::GiftPending {
                session: session.id.as_str().to_owned(),
                payment: session.payment_intent.as_ref().map(|pi| pi.id().as_str().to_owned()),
                donation,
            },
            _ => PaymentEvent::Ignored,
        },
        (Some("supporter"), CheckoutSessionMode::Subscription) => match &session.subscription {
            Some(subscription) => PaymentEvent::SupporterStarted {
                subscription: subscription.id().as_str().to_owned(),
                customer: session.customer.as_ref().map(|c| c.id().as_str().to_owned()),
                amount,
                donation,
            },
            None => unmatched("a supporter checkout without a subscription"),
        },
        (Some("shares"), CheckoutSessionMode::Payment) => {
            let application = metadata.and_then(|m| m.get("application")).map(String::as_str);
            match (application.or(session.client_reference_id.as_deref()), &session.payment_status) {
                (Some(application), CheckoutSessionPaymentStatus::Paid) => PaymentEvent::SharesPaid {
                    payment: payment_of(session),
                    application: application.to_owned(),
                    amount,
                    counts_on,
                },
                (Some(_), _) => PaymentEvent::Ignored,
                (None, _) => unmatched("a share purchase without its application"),
            }
        }
        (Some(other), _) => unmatched(&format!("a checkout of unknown kind {other:?}")),
        (None, _) => unmatched("a checkout without metadata.kind: not started by coopfund"),
    }
}

/// The payment a session took: its PaymentIntent, which refunds and disputes name.
fn payment_of(session: &CheckoutSession) -> String {
    session
        .payment_intent
        .as_ref()
        .map(|pi| pi.id().as_str().to_owned())
        .unwrap_or_else(|| session.id.as_str().to_owned())
}

fn supporter_invoice(invoice: &Invoice, counts_on: chrono::NaiveDate) -> PaymentEvent {
    let details = invoice.parent.as_ref().and_then(|p| p.subscription_details.as_ref());
    let Some(details) = details else {
        return unmatched("an invoice without a subscription");
    };
    if kind(details.metadata.as_ref()) != Some("supporter") || invoice.currency != Currency::GBP {
        return unmatched("an invoice for a subscription that is not a monthly supporter's");
    }
    match &invoice.id {
        Some(id) if invoice.amount_paid > 0 => PaymentEvent::SupporterPaid {
            invoice: id.as_str().to_owned(),
            subscription: details.subscription.id().as_str().to_owned(),
            amount: Pence(invoice.amount_paid),
            counts_on,
            email: invoice.customer_email.clone(),
            customer: invoice.customer.as_ref().map(|c| c.id().as_str().to_owned()),
        },
        _ => PaymentEvent::Ignored,
    }
}

/// The subscription of a monthly supporter's invoice; `None` for any other invoice.
fn subscription_of(invoice: &Invoice) -> Option<String> {
    let details = invoice.parent.as_ref()?.subscription_details.as_ref()?;
    (kind(details.metadata.as_ref()) == Some("supporter")).then(|| details.subscription.id().as_str().to_owned())
}

/// `invoice.payment_failed`: the decline reason is not on the invoice (API 2026-09-30); the
/// webhook asks Stripe for it before applying (`payments::ingest`).
fn payment_failed(invoice: &Invoice, zone: Tz) -> PaymentEvent {
    let Some(subscription) = subscription_of(invoice) else {
        return unmatched("a failed invoice for a subscription that is not a monthly supporter's");
    };
    if invoice.currency != Currency::GBP {
        return unmatched("a failed invoice not in pounds");
    }
    let Some(id) = &invoice.id else {
        return unmatched("a failed invoice without an id");
    };
    let next_attempt = invoice.next_payment_attempt.and_then(|t| DateTime::from_timestamp(t, 0));
    PaymentEvent::SupporterPaymentFailed(PaymentFailure {
        invoice: id.as_str().to_owned(),
        subscription,
        amount: Pence(invoice.amount_due),
        email: invoice.customer_email.clone(),
        customer: invoice.customer.as_ref().map(|c| c.id().as_str().to_owned()),
        next_attempt,
        next_attempt_on: next_attempt.map(|at| today_in(zone, at)),
        decline: None,
    })
}

/// `customer.subscription.updated` / `.deleted`: the subscription as Stripe says it is now.
/// The monthly amount is its first item's price (GBP only); a subscription of another product on
/// the same Stripe account is not a supporter's (SPEC §5).
fn subscription_changed(sub: &Subscription) -> PaymentEvent {
    if kind(Some(&sub.metadata)) != Some("supporter") {
        return unmatched("a subscription without metadata.kind = supporter: not started by coopfund");
    }
    let Some(item) = sub.items.data.first() else {
        return unmatched("a supporter's subscription without an item");
    };
    if item.price.currency != Currency::GBP || sub.currency != Currency::GBP {
        return unmatched("a supporter's subscription not in pounds");
    }
    let quantity = i64::try_from(item.quantity.unwrap_or(1)).unwrap_or(i64::MAX);
    // A price with no amount, or one past i64, fails the amount check (SPEC §5).
    let amount = Pence(item.price.unit_amount.and_then(|a| a.checked_mul(quantity)).unwrap_or(0));
    let paused = sub.pause_collection.is_some() || sub.status == SubscriptionStatus::Paused;
    let status = match &sub.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing if paused => SupporterStatus::Paused,
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => SupporterStatus::Active,
        SubscriptionStatus::Paused => SupporterStatus::Paused,
        SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid | SubscriptionStatus::Incomplete => {
            SupporterStatus::PastDue
        }
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => SupporterStatus::Cancelled,
        _ => return PaymentEvent::Ignored,
    };
    let reason = sub.cancellation_details.as_ref().and_then(|d| d.reason.as_ref()).map(|r| r.as_str());
    PaymentEvent::SubscriptionChanged(SubscriptionChange {
        subscription: sub.id.as_str().to_owned(),
        customer: Some(sub.customer.id().as_str().to_owned()),
        started_at: instant(sub.start_date),
        status,
        terms: SubscriptionTerms {
            amount,
            paused,
            paused_until: sub.pause_collection.as_ref().and_then(|p| p.resumes_at).map(instant),
            cancel_at_period_end: sub.cancel_at_period_end,
            next_payment_at: Some(instant(item.current_period_end)),
            billing_cycle_anchor: Some(instant(sub.billing_cycle_anchor)),
        },
        ending: (status == SupporterStatus::Cancelled).then(|| Ending::from_stripe_reason(reason)),
    })
}

/// `invoice_payment.paid`: which PaymentIntent paid which invoice (API 2026-09-30 names it only here).
fn invoice_payment(paid: &InvoicePayment) -> PaymentEvent {
    match (&paid.payment.payment_intent, paid.invoice.id(), paid.currency == Currency::GBP) {
        (Some(pi), Some(invoice), true) => PaymentEvent::InvoicePaid {
            invoice: invoice.as_str().to_owned(),
            payment_intent: pi.id().as_str().to_owned(),
            amount: Pence(paid.amount_paid.unwrap_or(paid.amount_requested)),
        },
        _ => unmatched("an invoice payment without a PaymentIntent or invoice, or not in pounds"),
    }
}

fn is_inquiry(status: &DisputeStatus) -> bool {
    matches!(
        status,
        DisputeStatus::WarningNeedsResponse | DisputeStatus::WarningUnderReview | DisputeStatus::WarningClosed
    )
}

fn disputed(dispute: &Dispute, stage: DisputeStage) -> PaymentEvent {
    if dispute.currency != Currency::GBP {
        return unmatched("a dispute not in pounds");
    }
    match &dispute.payment_intent {
        Some(pi) => PaymentEvent::Disputed {
            payment: pi.id().as_str().to_owned(),
            dispute: dispute.id.as_str().to_owned(),
            amount: Pence(dispute.amount),
            stage,
        },
        None => unmatched("a dispute of a charge without a PaymentIntent"),
    }
}

fn kind(metadata: Option<&HashMap<String, String>>) -> Option<&str> {
    metadata?.get("kind").map(String::as_str)
}

fn donation_ref(metadata: Option<&HashMap<String, String>>, client_reference_id: Option<&str>) -> Option<String> {
    metadata
        .and_then(|m| m.get("donation").or_else(|| m.get("supporter")))
        .map(String::as_str)
        .or(client_reference_id)
        .map(str::to_owned)
}

fn unmatched(reason: &str) -> PaymentEvent {
    PaymentEvent::Unmatched { reason: reason.to_owned() }
}

fn instant(timestamp: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(timestamp, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    const EVENTS: [&str; 3] = [
        include_str!("demo_events/gift_paid.json"),
        include_str!("demo_events/supporter_started.json"),
        include_str!("demo_events/supporter_paid.json"),
    ];

    fn count_leaves(json: &Value) -> usize {
        match json {
            Value::Object(map) => map.values().map(count_leaves).sum(),
            Value::Array(items) => items.iter().map(count_leaves).sum(),
            _ => 1,
        }
    }

    /// Replaces the `n`th leaf, in document order; true once it has.
    fn replace_leaf(json: &mut Value, n: &mut usize, value: &Value) -> bool {
        match json {
            Value::Object(map) => map.values_mut().any(|v| replace_leaf(v, n, value)),
            Value::Array(items) => items.iter_mut().any(|v| replace_leaf(v, n, value)),
            leaf if *n == 0 => {
                *leaf = value.clone();
                true
            }
            _ => {
                *n -= 1;
                false
            }
        }
    }

    fn any_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
            Just(Value::from("paid")),
            Just(Value::from("subscription")),
            Just(Value::from("checkout.session.completed")),
            Just(Value::from("charge.refunded")),
        ]
    }

    proptest! {
        /// Webhook handling in CI, as `fuzz/fuzz_targets/webhook_event.rs` is outside it: real
        /// events with any few fields changed to anything are read or refused, never a panic.
        #[test]
        fn events_with_any_fields_changed_are_interpreted_without_a_panic(
            which in 0..EVENTS.len(),
            changes in proptest::collection::vec((any::<usize>(), any_leaf()), 1..6),
        ) {
            let mut json: Value = serde_json::from_str(EVENTS[which]).expect("a fixture");
            for (n, value) in &changes {
                let mut n = n % count_leaves(&json).max(1);
                replace_leaf(&mut json, &mut n, value);
            }
            let payload = json.to_string();
            if let Ok(event) = serde_json::from_str::<Event>(&payload) {
                let _ = received(&event, &payload);
                let _ = interpret(&event, chrono_tz::Europe::London);
            }
        }
    }
}
