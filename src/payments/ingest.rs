//! Webhook events from verification to the ledger: the one path every payment takes,
//! whether Stripe delivered it or the demo gateway made it.

use std::sync::Arc;

use stripe_webhook::{Webhook, WebhookError};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::events;
use crate::app::AppState;
use crate::clock::Clock;
use crate::domain::payment::largest_payment;
use crate::domain::{EventOutcome, PaymentEvent, ReceivedEvent};
use crate::store::{Actor, Applied, PaymentEvents, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not from Stripe, or too old: refused, nothing stored.
    #[error("webhook signature rejected: {0}")]
    Signature(WebhookError),
    /// Not stored: the sender must try again.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not stored: the service is stopping, and the sender must try again.
    #[error("the service is stopping")]
    Stopping,
}

/// How many batches of events are applied at once, each in its own transaction (and, on
/// PostgreSQL, on its own stripe of the campaign totals: `store/postgres.rs`).
const WORKERS: usize = 3;

/// The most events applied in one transaction.
const BATCH: usize = 16;

/// Verified events on their way to the ledger. Deliveries that arrive together are applied
/// together, a batch in one transaction with one commit (`Store::apply_payment_events`), each
/// by the same rules as one alone; each delivery is answered with its own outcome once the
/// batch is committed, so a 200 still means stored. Nothing waits to fill a batch: a worker
/// takes the events that are waiting when it is free, however few.
pub struct EventQueue {
    jobs: mpsc::Sender<Job>,
}

/// One delivery waiting for its batch, and where its outcome goes.
struct Job {
    event: ReceivedEvent,
    meaning: PaymentEvent,
    outcome: oneshot::Sender<Result<Applied, StoreError>>,
}

impl EventQueue {
    /// Starts the workers; they stop when the queue is dropped, after the events it holds.
    pub fn start(store: Arc<dyn PaymentEvents>, clock: Arc<dyn Clock>) -> EventQueue {
        let (jobs, waiting) = mpsc::channel(WORKERS * BATCH);
        let waiting = Arc::new(Mutex::new(waiting));
        // Each worker on its own stripe; another instance most likely on others.
        let first = i64::from(std::process::id());
        for stripe in (first..).take(WORKERS) {
            tokio::spawn(work(store.clone(), clock.clone(), waiting.clone(), stripe));
        }
        EventQueue { jobs }
    }

    /// Stores and applies a newly delivered event with those that arrived with it; its outcome
    /// once its batch is committed.
    async fn apply(&self, event: ReceivedEvent, meaning: PaymentEvent) -> Result<Applied, IngestError> {
        let (outcome, answer) = oneshot::channel();
        self.jobs.send(Job { event, meaning, outcome }).await.map_err(|_| IngestError::Stopping)?;
        Ok(answer.await.map_err(|_| IngestError::Stopping)??)
    }
}

/// A worker: the events waiting, up to [`BATCH`], in one transaction, adding to `stripe` of the
/// campaign totals; then the next ones.
async fn work(
    store: Arc<dyn PaymentEvents>,
    clock: Arc<dyn Clock>,
    waiting: Arc<Mutex<mpsc::Receiver<Job>>>,
    stripe: i64,
) {
    let mut jobs = Vec::with_capacity(BATCH);
    loop {
        if waiting.lock().await.recv_many(&mut jobs, BATCH).await == 0 {
            return;
        }
        let (events, answers): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|job| ((job.event, job.meaning), job.outcome)).unzip();
        let applied = store.apply_payment_events(&events, stripe, clock.now()).await;
        for (answer, applied) in answers.into_iter().zip(applied) {
            // A delivery whose sender went away is stored all the same.
            let _ = answer.send(applied);
        }
    }
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
    let meaning = with_decline(state, &received.id, interpret(state, &event)).await?;
    // A payment in the first seconds of a month counts towards that month's campaign.
    state.fund.roll_over_once_a_day(state.fund.today()).await?;
    let (id, kind) = (received.id.clone(), received.kind.clone());
    let applied = state.events.apply(received, meaning).await?;
    tracing::info!(event = %id, %kind, outcome = applied.outcome.label(), "webhook event");
    Ok(follow_up(state, &kind, applied).await?)
}

/// What a verified event means, its amounts checked (SPEC §5).
fn interpret(state: &AppState, event: &stripe_webhook::Event) -> crate::domain::PaymentEvent {
    let largest = largest_payment(state.config.donation_max);
    events::interpret(event, state.config.fund_timezone).checked(largest)
}

/// Whether an event with this id is already stored and settled: a redelivery, which changes
/// nothing and so needs nothing asked of the gateway. A parked, unmatched or unparsed event may
/// still be applied again, so it counts as not settled.
async fn already_settled(state: &AppState, id: &str) -> Result<bool, StoreError> {
    let kept = state.store.stripe_event(id).await?;
    Ok(kept.is_some_and(|row| !matches!(row.status.as_str(), "parked" | "unmatched" | "unparsed")))
}

/// How long to wait for the gateway to say why a payment failed before giving the notice in
/// general words: a slow Stripe must not hold up the webhook's answer.
const DECLINE_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A failed supporter's payment with what the bank said, asked of the gateway before the event
/// `id` is stored (the invoice does not carry it), unless it is a redelivery of one settled
/// already. If the gateway cannot tell within `DECLINE_LOOKUP_TIMEOUT`, the notice still goes,
/// in general words. Any other event as it is, nothing asked.
async fn with_decline(state: &AppState, id: &str, mut meaning: PaymentEvent) -> Result<PaymentEvent, StoreError> {
    if let PaymentEvent::SupporterPaymentFailed(failure) = &mut meaning
        && failure.decline.is_none()
        && !already_settled(state, id).await?
    {
        match tokio::time::timeout(DECLINE_LOOKUP_TIMEOUT, state.gateway.decline(&failure.invoice)).await {
            Ok(Ok(said)) => failure.decline = said,
            Err(_) => {
                let invoice = &failure.invoice;
                tracing::warn!(%invoice, "Stripe did not say in time why a supporter's payment failed");
            }
            Ok(Err(e)) => {
                let invoice = &failure.invoice;
                tracing::warn!(%invoice, error = %e, "Stripe did not say why a supporter's payment failed");
            }
        }
    }
    Ok(meaning)
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

/// What follows an applied event: [`counted`], then the events that waited for the reference
/// it made known applied; its outcome.
async fn follow_up(state: &AppState, kind: &str, applied: Applied) -> Result<EventOutcome, StoreError> {
    counted(state, kind, &applied.outcome);
    wake(state, applied.parked).await?;
    Ok(applied.outcome)
}

/// An applied event (of type `kind`) in the metrics, and the figures and the outbox woken when
/// it moved money.
fn counted(state: &AppState, kind: &str, outcome: &EventOutcome) {
    crate::metrics::webhook_event(kind, outcome.label());
    if let EventOutcome::Processed { money_moved: true, .. } = outcome {
        money_has_moved(state);
    }
}

/// Applies `parked` (events waiting for a reference now known), and in turn those waiting for a
/// reference that one of them makes known (a refund waits for a PaymentIntent, which an
/// invoice payment brings, which waits for its invoice). Only those: never every parked event.
async fn wake(state: &AppState, parked: Vec<ReceivedEvent>) -> Result<(), StoreError> {
    // Oldest first, and what one makes known right after it.
    let mut waiting: Vec<ReceivedEvent> = parked.into_iter().rev().collect();
    while let Some(parked) = waiting.pop() {
        waiting.extend(apply_again(state, &parked).await?.into_iter().rev());
    }
    Ok(())
}

/// Applies a parked event again; the events that were waiting for the reference it made known.
async fn apply_again(state: &AppState, parked: &ReceivedEvent) -> Result<Vec<ReceivedEvent>, StoreError> {
    let Ok(event) = serde_json::from_str::<stripe_webhook::Event>(&parked.payload) else {
        return Ok(Vec::new());
    };
    let applied = state.store.apply_payment_event(parked, &interpret(state, &event), true, state.clock.now()).await?;
    counted(state, &parked.kind, &applied.outcome);
    if let EventOutcome::Processed { .. } = applied.outcome {
        tracing::info!(event = %parked.id, "parked webhook event applied");
    }
    // Only a processed event makes a reference known, so only it has events waiting.
    Ok(applied.parked)
}

/// Applies the parked events whose reference is known by now (those whose wake-up a crash or
/// an error cut short), and keeps for staff as unmatched those parked since before
/// `stale_before`. Run now and then by `jobs::parked`.
pub async fn tidy_parked(state: &AppState, stale_before: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
    // One event that fails to apply holds back neither the others nor the week's expiry.
    for parked in state.store.wakeable_parked_events().await? {
        let woken = match apply_again(state, &parked).await {
            Ok(waiting) => wake(state, waiting).await,
            Err(e) => Err(e),
        };
        if let Err(e) = woken {
            tracing::warn!(event = %parked.id, error = %e, "a parked webhook event could not be applied again");
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
    let applied = state.store.apply_payment_event(&kept, &meaning, true, now).await?;
    tracing::info!(event = %kept.id, outcome = applied.outcome.label(), "webhook event processed again by staff");
    Ok(Some(match follow_up(state, &kept.kind, applied).await? {
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
