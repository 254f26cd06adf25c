//! The monthly roll-over: next month's campaign appears at local midnight with no command.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;

/// How often each instance looks; reading the figures also rolls over on a new day.
const EVERY: Duration = Duration::from_secs(30);

pub fn spawn(state: AppState, stop: CancellationToken) -> JoinHandle<()> {
    super::spawn_every("monthly roll-over", EVERY, stop, move || {
        let state = state.clone();
        async move {
            state.fund.roll_over(state.fund.today()).await?;
            Ok(())
        }
    })
}
