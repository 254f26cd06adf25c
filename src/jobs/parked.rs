//! Parked webhook events are applied as soon as their payment arrives; this sweep catches
//! any left behind by a crash between the two.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::payments::ingest::apply_parked;

const EVERY: Duration = Duration::from_secs(60);

pub fn spawn(state: AppState, stop: CancellationToken) -> JoinHandle<()> {
    super::spawn_every("parked webhook events", EVERY, stop, move || {
        let state = state.clone();
        async move { Ok(apply_parked(&state).await?) }
    })
}
