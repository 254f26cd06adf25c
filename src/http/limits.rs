//! What a crowd cannot make the service do: try more than a few guesses (attempts are counted
//! before they are judged), or check so many passwords at once that memory runs out.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use crate::store::{AttemptLimit, CountedAttempt, StaffArea, StoreError};

/// Password checks (argon2id, about 19 MiB each) running at once, per instance.
pub const PASSWORD_CHECKS_AT_ONCE: usize = 4;
/// How long a request waits for a turn to check a password before it is told to come back.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(5);

/// Counts attempts per key in the database before each is judged, so that a limit holds
/// however many arrive at once and on however many instances (SPEC §8: five failed logins
/// per account in 15 minutes). The staff login uses it; so may any form that checks a secret.
#[derive(Clone, Copy, Debug)]
pub struct Limiter {
    pub window: chrono::Duration,
}

/// Why an attempt was not made.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("too many attempts")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Limiter {
    /// Counts an attempt under each of `limits`, or refuses it, counting nothing, when any key
    /// has had its `most` attempts in the window. A successful attempt should be
    /// [`Limiter::forgive`]n: only failures count.
    ///
    /// # Errors
    /// [`Refused::TooMany`] at a limit; [`Refused::Store`] when the database fails.
    pub async fn attempt(
        &self,
        store: &dyn StaffArea,
        limits: &[AttemptLimit<'_>],
        now: DateTime<Utc>,
    ) -> Result<CountedAttempt, Refused> {
        store.count_attempt(limits, now - self.window, now).await?.ok_or(Refused::TooMany)
    }

    /// Takes back an attempt that succeeded.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn forgive(&self, store: &dyn StaffArea, attempt: &CountedAttempt) -> Result<(), StoreError> {
        store.forgive_attempt(attempt).await
    }
}

/// Turns to check a password, so that a crowd of logins queues instead of each taking its
/// 19 MiB at once (150 at once had grown the process past 1.3 GiB).
#[derive(Clone, Debug)]
pub struct PasswordChecks(Arc<Semaphore>);

/// No turn came in time: answered 503 with `Retry-After`, without hashing.
#[derive(Debug)]
pub struct Busy;

impl PasswordChecks {
    pub fn new(at_once: usize) -> PasswordChecks {
        PasswordChecks(Arc::new(Semaphore::new(at_once)))
    }

    /// Runs `work` (a hash or a check) on the blocking pool when a turn comes.
    ///
    /// # Errors
    /// [`Busy`] when no turn came within a few seconds, or the work panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let turn = tokio::time::timeout(PASSWORD_CHECK_WAIT, self.0.clone().acquire_owned()).await;
        let Ok(Ok(turn)) = turn else {
            return Err(Busy);
        };
        let done = tokio::task::spawn_blocking(work).await.map_err(|_| Busy);
        drop(turn);
        done
    }
}
