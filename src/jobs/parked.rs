//! Parked webhook events: those whose reference arrived while they were being parked are
//! applied, and those parked for a week are kept for staff as unmatched (SPEC §5).

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::payments::ingest::tidy_parked;

const EVERY: Duration = Duration::from_secs(60);

/// How long an event may wait for the payment it names before staff are asked to look at it.
const AT_MOST: chrono::TimeDelta = chrono::TimeDelta::days(7);

pub fn spawn(state: AppState, stop: CancellationToken) -> JoinHandle<()> {
    super::spawn_every("parked webhook events", EVERY, stop, move || {
        let state = state.clone();
        async move { Ok(tidy_parked(&state, state.clock.now() - AT_MOST).await?) }
    })
}
