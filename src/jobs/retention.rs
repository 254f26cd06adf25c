//! The retention job (SPEC §10): givers with no activity for `RETENTION_YEARS` are
//! pseudonymised exactly as an erasure the reader asks for is (`erase_reader`, the same code),
//! former members' register entries are removed 10 years after they ceased, and stored events
//! that never counted lose their payloads after `RETENTION_YEARS`. (The address an
//! erasure confirmation goes to is forgotten by the outbox as it sends it.) It runs on every
//! instance; each step is safe when several run at once. It never touches a member, an active supporter, an
//! amount, a receipt number or the ledger.

use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::domain::account::{Erasure, pseudonym};
use crate::domain::today_in;
use crate::store::{ReaderAccounts, StoreError};

/// How often each instance looks: the rules count in years, so an hour late is nothing.
const EVERY: Duration = Duration::from_secs(60 * 60);
/// Years after they ceased that a former member's register entry is kept.
pub const REGISTER_YEARS: u32 = 10;
/// People erased in one statement's batch; the next batch follows at once.
const BATCH: i64 = 100;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// People pseudonymised for inactivity.
    pub erased: usize,
    /// Former members whose register entries were removed.
    pub removed: Vec<i64>,
    /// Stored events that never counted whose payloads were forgotten.
    pub events_forgotten: u64,
}

/// Runs the retention rules once at `now` (business time), with `years` of `RETENTION_YEARS`
/// and the fund's calendar `zone` for the register's dates.
///
/// # Errors
/// When the database fails; what was done before stays done, and the next run goes on.
pub async fn run_once(
    store: &dyn ReaderAccounts,
    years: u32,
    zone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<Retained, StoreError> {
    let today = today_in(zone, now);
    let ceased_before = today.checked_sub_months(Months::new(12 * REGISTER_YEARS)).unwrap_or(today);
    let removed = store.remove_former_members(ceased_before, now).await?;
    let before = now.checked_sub_months(Months::new(12 * years)).unwrap_or(now);
    let why = Erasure::Retention { years };
    let mut erased = 0;
    loop {
        let batch = store.inactive_givers(before, BATCH).await?;
        let mut erased_now = 0;
        for key in &batch {
            // Another instance may have erased them meanwhile: then this changes nothing.
            if store.erase_reader(key, &pseudonym(), &why, now).await? {
                erased_now += 1;
            }
        }
        erased += erased_now;
        if batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) || erased_now == 0 {
            break;
        }
    }
    let events_forgotten = store.forget_uncounted_events(before).await?;
    Ok(Retained { erased, removed, events_forgotten })
}

pub fn spawn(state: AppState, stop: CancellationToken) -> JoinHandle<()> {
    super::spawn_every("retention", EVERY, stop, move || {
        let state = state.clone();
        async move {
            let config = &state.config;
            let done =
                run_once(state.store.as_ref(), config.retention_years, config.fund_timezone, state.clock.now()).await?;
            if done != Retained::default() {
                tracing::info!(
                    erased = done.erased,
                    removed = done.removed.len(),
                    events = done.events_forgotten,
                    "retention: personal data past its time pseudonymised"
                );
            }
            Ok(())
        }
    })
}
