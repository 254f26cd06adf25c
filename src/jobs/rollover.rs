//! The monthly roll-over: next month's campaign appears at local midnight with no command.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::http::AppState;

/// How often each instance looks; reading the figures also rolls over on a new day.
const EVERY: Duration = Duration::from_secs(30);

pub fn spawn(state: AppState, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let today = state.fund.today();
            match state.store.roll_over_monthly(today, state.clock.now()).await {
                Ok(created) if !created.is_empty() => {
                    tracing::info!(?created, "monthly campaigns rolled over");
                    state.fund.changed();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "monthly roll-over failed; will try again"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}
