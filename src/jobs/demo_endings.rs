//! The demo gateway's one timed event (SPEC §4, §10): a monthly gift cancelled at the period's
//! end ends when that end passes, as Stripe ends it with `customer.subscription.deleted`. With
//! real Stripe this job does nothing: Stripe sends the event itself. Each minute, every
//! instance sends each gift due to end the same event (its id is the subscription's), through
//! the webhook's own code, so the gift ends once and the reader is thanked once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::payments::demo::subscription_deleted;
use crate::payments::ingest::{IngestError, ingest};

/// How often each instance looks: a demo gift ends within a minute of its period's end.
const EVERY: Duration = Duration::from_secs(60);

/// Ends, at `now` (business time), every demo gift cancelled at a period's end that has
/// passed; how many were told. Nothing with a real gateway.
///
/// # Errors
/// When the database fails; the gifts not yet told are told at the next run.
pub async fn run_once(state: &AppState, now: DateTime<Utc>) -> Result<usize, IngestError> {
    if !state.gateway.is_demo() {
        return Ok(0);
    }
    let due = state.store.supporters_due_to_end(now).await?;
    for gift in &due {
        let payload = subscription_deleted(gift).to_string();
        let signature = stripe_webhook::Webhook::generate_test_header(&payload, state.gateway.webhook_secret(), None);
        ingest(state, &payload, &signature).await?;
    }
    if !due.is_empty() {
        state.outbox_wake.notify_one();
    }
    Ok(due.len())
}

pub fn spawn(state: AppState, stop: CancellationToken) -> JoinHandle<()> {
    super::spawn_every("demo gift endings", EVERY, stop, move || {
        let state = state.clone();
        async move {
            let ended = run_once(&state, state.clock.now()).await?;
            if ended > 0 {
                tracing::info!(ended, "demo monthly gifts ended at the end of their period");
            }
            Ok(())
        }
    })
}
