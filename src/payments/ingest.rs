//! Webhook events from verification to the ledger: the one path every payment takes,
//! whether Stripe delivered it or the demo gateway made it.

use stripe_webhook::{Webhook, WebhookError};

use super::events;
use crate::app::AppState;
use crate::domain::{EventOutcome, ReceivedEvent};
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
        Ok(event) => event,
        Err(WebhookError::BadParse(reason)) => {
            let unreadable = unparsed(payload, now);
            tracing::warn!(event = %unreadable.id, %reason, "verified webhook event could not be read; kept for staff");
            state.store.record_unparsed_event(&unreadable, &reason, now).await?;
            crate::metrics::webhook_event(&unreadable.kind, EventOutcome::Unparsed.label());
            return Ok(EventOutcome::Unparsed);
        }
        Err(e) => return Err(IngestError::Signature(e)),
    };
    let received = events::received(&event, payload);
    let meaning = events::interpret(&event, state.config.fund_timezone);
    // A payment in the first seconds of a month counts towards that month's campaign.
    state.fund.roll_over_once_a_day(state.fund.today()).await?;
    let outcome = state.store.apply_payment_event(&received, &meaning, false, now).await?;
    tracing::info!(event = %received.id, kind = %received.kind, outcome = outcome.label(), "webhook event");
    follow_up(state, &received.kind, &outcome).await?;
    Ok(outcome)
}

/// What follows an applied event: its count in the metrics, the figures and the outbox woken
/// when money moved, and the events that waited for a payment it brought (the store says
/// whether any were waiting; the sweep in `jobs::parked` catches one parked at that very moment).
async fn follow_up(state: &AppState, kind: &str, outcome: &EventOutcome) -> Result<(), StoreError> {
    crate::metrics::webhook_event(kind, outcome.label());
    if let EventOutcome::Processed { money_moved, may_unpark } = *outcome {
        if money_moved {
            money_has_moved(state);
        }
        if may_unpark {
            apply_parked(state).await?;
        }
    }
    Ok(())
}

/// Applies again the events that came before the payment they refer to.
pub async fn apply_parked(state: &AppState) -> Result<(), StoreError> {
    for parked in state.store.parked_events().await? {
        let Ok(event) = serde_json::from_str::<stripe_webhook::Event>(&parked.payload) else {
            continue;
        };
        let meaning = events::interpret(&event, state.config.fund_timezone);
        let outcome = state.store.apply_payment_event(&parked, &meaning, true, state.clock.now()).await?;
        if let EventOutcome::Processed { money_moved, .. } = outcome {
            tracing::info!(event = %parked.id, "parked webhook event applied");
            if money_moved {
                money_has_moved(state);
            }
        }
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
    let meaning = events::interpret(&event, state.config.fund_timezone);
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
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
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
