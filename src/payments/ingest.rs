//! Webhook events from verification to the ledger: the one path every payment takes,
//! whether Stripe delivered it or the demo gateway made it.

use stripe_webhook::{Webhook, WebhookError};

use super::events;
use crate::app::AppState;
use crate::domain::payment::largest_payment;
use crate::domain::{EventOutcome, PaymentEvent, ReceivedEvent};
use crate::store::{Actor, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not from Stripe, or too old: refused, nothing stored.
    #[error("webhook signature rejected: {0}")]
    Signature(WebhookError),
    /// Not stored: the sender must try again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies a delivery, stores it by its id and applies it: all or nothing.
pub async fn ingest(state: &AppState, payload: &str, signature: &str) -> Result<EventOutcome, IngestError> {
    let now = state.clock.now();
    let event = match Webhook::construct_event(payload, signature, state.gateway.webhook_secret()) {
        // No database keeps a NUL in text: such an event is unreadable, not a reason to fail.
        Ok(_) if holds_nul(payload) => {
            return keep_unreadable(state, payload, "a NUL character in a text field", now).await;
        }
        Ok(event) => event,
        Err(WebhookError::BadParse(reason)) => return keep_unreadable(state, payload, &reason, now).await,
        Err(e) => return Err(IngestError::Signature(e)),
    };
    let received = events::received(&event, payload);
    let meaning = with_decline(state, interpret(state, &event)).await;
    // A payment in the first seconds of a month counts towards that month's campaign.
    state.fund.roll_over_once_a_day(state.fund.today()).await?;
    let outcome = state.store.apply_payment_event(&received, &meaning, false, now).await?;
    tracing::info!(event = %received.id, kind = %received.kind, outcome = outcome.label(), "webhook event");
    follow_up(state, &received.kind, &outcome).await?;
    Ok(outcome)
}

/// What a verified event means, its amounts checked (SPEC §5).
fn interpret(state: &AppState, event: &stripe_webhook::Event) -> crate::domain::PaymentEvent {
    let largest = largest_payment(state.config.donation_max);
    events::interpret(event, state.config.fund_timezone).checked(largest)
}

/// A failed supporter's payment with what the bank said, asked of the gateway before the event
/// is stored (the invoice does not carry it). If the gateway cannot tell, the notice still goes,
/// in general words.
async fn with_decline(state: &AppState, mut meaning: PaymentEvent) -> PaymentEvent {
    if let PaymentEvent::SupporterPaymentFailed(failure) = &mut meaning
        && failure.decline.is_none()
    {
        match state.gateway.decline(&failure.invoice).await {
            Ok(said) => failure.decline = said,
            Err(e) => {
                let invoice = &failure.invoice;
                tracing::warn!(%invoice, error = %e, "Stripe did not say why a supporter's payment failed");
            }
        }
    }
    meaning
}

/// Keeps a verified event that cannot be read, under an id that any database can store.
async fn keep_unreadable(
    state: &AppState,
    payload: &str,
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<EventOutcome, IngestError> {
    let unreadable = unparsed(payload, now);
    tracing::warn!(event = %unreadable.id, %reason, "verified webhook event could not be read; kept for staff");
    state.store.record_unparsed_event(&unreadable, reason, now).await?;
    crate::metrics::webhook_event(&unreadable.kind, EventOutcome::Unparsed.label());
    Ok(EventOutcome::Unparsed)
}

/// Whether any text in the JSON holds a NUL character (the escape `\u0000`).
fn holds_nul(payload: &str) -> bool {
    fn any_nul(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(any_nul),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || any_nul(v)),
            _ => false,
        }
    }
    payload.contains("\\u0000") && serde_json::from_str(payload).is_ok_and(|value: serde_json::Value| any_nul(&value))
}

/// What follows an applied event: its count in the metrics, the figures and the outbox woken
/// when money moved, and the events that waited for the reference it made known.
async fn follow_up(state: &AppState, kind: &str, outcome: &EventOutcome) -> Result<(), StoreError> {
    crate::metrics::webhook_event(kind, outcome.label());
    if let EventOutcome::Processed { money_moved, known } = outcome {
        if *money_moved {
            money_has_moved(state);
        }
        if let Some(reference) = known {
            wake(state, reference.clone()).await?;
        }
    }
    Ok(())
}

/// Applies the events parked waiting for `reference`, and in turn those waiting for a
/// reference that one of them makes known (a refund waits for a PaymentIntent, which an
/// invoice payment brings, which waits for its invoice). Only those: never every parked event.
async fn wake(state: &AppState, reference: String) -> Result<(), StoreError> {
    let mut references = vec![reference];
    while let Some(reference) = references.pop() {
        for parked in state.store.events_waiting_for(&reference).await? {
            references.extend(apply_again(state, &parked).await?);
        }
    }
    Ok(())
}

/// Applies a parked event again; the reference it made known, if any.
async fn apply_again(state: &AppState, parked: &ReceivedEvent) -> Result<Option<String>, StoreError> {
    let Ok(event) = serde_json::from_str::<stripe_webhook::Event>(&parked.payload) else {
        return Ok(None);
    };
    let outcome = state.store.apply_payment_event(parked, &interpret(state, &event), true, state.clock.now()).await?;
    crate::metrics::webhook_event(&parked.kind, outcome.label());
    let EventOutcome::Processed { money_moved, known } = outcome else {
        return Ok(None);
    };
    tracing::info!(event = %parked.id, "parked webhook event applied");
    if money_moved {
        money_has_moved(state);
    }
    Ok(known)
}

/// Applies the parked events whose reference is known by now (one that was parked in the very
/// moment its reference arrived, or whose wake-up a crash cut short), and keeps for staff as
/// unmatched those parked since before `stale_before`. Run now and then by `jobs::parked`.
pub async fn tidy_parked(state: &AppState, stale_before: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
    for parked in state.store.wakeable_parked_events().await? {
        if let Some(reference) = apply_again(state, &parked).await? {
            wake(state, reference).await?;
        }
    }
    let expired = state.store.expire_parked_events(stale_before, state.clock.now()).await?;
    if expired > 0 {
        tracing::warn!(events = expired, "webhook events parked for a week are kept for staff as unmatched");
    }
    Ok(())
}

/// Applies a kept event again at staff's request (after a fix, or once the donation it names
/// exists), saying how it ended; `None` when there is no such event.
pub async fn process_again(state: &AppState, id: &str, actor: &Actor) -> Result<Option<String>, StoreError> {
    let now = state.clock.now();
    let Some(row) = state.store.stripe_event(id).await? else {
        return Ok(None);
    };
    let detail = format!("{id} ({}, {})", row.kind, row.status);
    state.store.audit(actor, "event.process", &detail, now).await?;
    let kept = ReceivedEvent { id: row.id, kind: row.kind, created: row.created, payload: row.payload };
    let Ok(event) = serde_json::from_str::<stripe_webhook::Event>(&kept.payload) else {
        return Ok(Some("still unreadable".to_owned()));
    };
    if holds_nul(&kept.payload) {
        return Ok(Some("still unreadable".to_owned()));
    }
    let meaning = interpret(state, &event);
    let outcome = state.store.apply_payment_event(&kept, &meaning, true, now).await?;
    tracing::info!(event = %kept.id, outcome = outcome.label(), "webhook event processed again by staff");
    follow_up(state, &kept.kind, &outcome).await?;
    Ok(Some(match outcome {
        EventOutcome::Duplicate => "already processed: nothing changed".to_owned(),
        other => other.label().to_owned(),
    }))
}

/// The figures change, and the payment's email is waiting in the outbox: after any booking,
/// by webhook or by hand.
pub fn money_has_moved(state: &AppState) {
    crate::metrics::ledger_rows(1);
    state.fund.changed();
    state.outbox_wake.notify_one();
}

/// An unreadable event, kept under its id when one can be found in it.
fn unparsed(payload: &str, now: chrono::DateTime<chrono::Utc>) -> ReceivedEvent {
    let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    // An id or type with a control character in it is not kept as it is (PostgreSQL refuses a NUL).
    let text = |key: &str| {
        value.get(key).and_then(|v| v.as_str()).filter(|t| !t.chars().any(char::is_control)).map(str::to_owned)
    };
    let digest = crate::fund::fnv1a(payload.as_bytes());
    ReceivedEvent {
        id: text("id").unwrap_or_else(|| format!("unparsed_{digest:016x}")),
        kind: text("type").unwrap_or_else(|| "unknown".to_owned()),
        created: value
            .get("created")
            .and_then(|v| v.as_i64())
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .unwrap_or(now),
        payload: payload.to_owned(),
    }
}
