//! Work that runs by itself in the background of `serve`, on every instance.

pub mod demo_endings;
pub mod parked;
pub mod reconcile;
pub mod retention;
pub mod rollover;

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Runs `work` now and then every `period` until `stop`; a failure is logged and tried again next time.
fn spawn_every<F, Fut>(name: &'static str, period: Duration, stop: CancellationToken, mut work: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    tokio::spawn(async move {
        loop {
            if let Err(e) = work().await {
                tracing::warn!(job = name, error = %e, "background job failed; will try again");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    })
}
