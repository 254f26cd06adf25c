//! The outbox worker: sends what payments wrote to the outbox, retrying with backoff for
//! more than a day, so that nothing is lost while SMTP is down and nothing is sent twice by us
//! (but for a crash between the SMTP server's yes and our record of it: see `send_due`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Letterhead, Transport, compose};
use crate::config::Config;
use crate::domain::Notice;
use crate::store::{Delivery, OutboxEmail, Tried};

/// How long a worker holds a claim; one that dies lets it lapse and another sends instead.
const CLAIM: Duration = Duration::from_secs(120);
/// How often an idle worker looks for due email (new payments also wake it at once).
const POLL: Duration = Duration::from_secs(1);
const BATCH: i64 = 32;
/// Emails in flight at once; lettre's pool keeps a connection for each.
const SENDING_AT_ONCE: usize = 8;
/// Retrying stops this long after the first attempt; the email is then shown to staff as failed.
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(26);

pub struct Outbox {
    /// Names this worker's claims: only it records how its emails went.
    claimant: String,
    store: Arc<dyn crate::store::Outbox>,
    transport: Transport,
    config: Arc<Config>,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn crate::store::Outbox>,
        transport: Transport,
        config: Arc<Config>,
        wake: Arc<Notify>,
    ) -> Outbox {
        let claimant = format!("outbox-{}", uuid::Uuid::new_v4().simple());
        Outbox { claimant, store, transport, config, wake }
    }

    /// Sends until `stop`. The emails being sent when `stop` comes are finished; the rest of
    /// the batch is given back, so that another instance sends it without waiting out the claim.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let sent = match self.send_due(&stop).await {
                    Ok(sent) => sent,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox: cannot read due emails; will try again");
                        0
                    }
                };
                if sent > 0 && !stop.is_cancelled() {
                    continue;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        })
    }

    /// Claims and sends one batch of due emails; returns how many it tried.
    pub async fn send_due(&self, stop: &CancellationToken) -> Result<usize, crate::store::StoreError> {
        // Retry times are real time, whatever the business clock says.
        let now = Utc::now();
        let claimed_until = now + chrono::Duration::from_std(CLAIM).unwrap_or_default();
        let due = self.store.claim_emails(now, claimed_until, BATCH, &self.claimant).await?;
        // SMTP is a conversation of round trips: several at once keep the line busy.
        for (n, chunk) in due.chunks(SENDING_AT_ONCE).enumerate() {
            if stop.is_cancelled() {
                for email in &due[n * SENDING_AT_ONCE..] {
                    self.store.release_email(email.id, &self.claimant).await?;
                }
                return Ok(n * SENDING_AT_ONCE);
            }
            // Each attempt is recorded as soon as it ends, with those that ended while the last
            // record was being written: one write (and commit) per email competed with the
            // payments coming in, and one per chunk would keep the sent waiting on the slowest.
            // An email the SMTP server took is sent again only if this instance dies in the
            // moment before its record, under the same Message-ID, which mail systems use to
            // drop a repeat.
            let mut sending: FuturesUnordered<_> = chunk.iter().map(|email| self.send_one(email)).collect();
            while let Some(first) = sending.next().await {
                let mut tried = vec![first];
                while let Some(Some(more)) = sending.next().now_or_never() {
                    tried.push(more);
                }
                self.store.emails_tried(&self.claimant, &tried).await?;
            }
        }
        Ok(due.len())
    }

    /// Sends one email; how it went, to be recorded with the rest of its chunk.
    async fn send_one(&self, email: &OutboxEmail) -> Tried {
        let base = self.config.public_base_url.as_str().trim_end_matches('/');
        let account_url = format!("{base}/account");
        let home_url = format!("{base}/");
        let letterhead = Letterhead {
            org_name: &self.config.org_name,
            org_registration: &self.config.org_registration,
            from: &self.config.mail_from,
            account_url: &account_url,
            home_url: &home_url,
        };
        let message = serde_json::from_str::<Notice>(&email.payload)
            .map_err(|e| super::MailError::Build(format!("unreadable outbox payload: {e}")))
            .and_then(|notice| compose(&notice, &email.recipient, &email.message_key, &letterhead));
        let result = match message {
            Ok(message) => self.transport.send(message).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!(outbox = email.id, attempts = email.attempts, "email sent");
                crate::metrics::email("sent");
                Tried { id: email.id, delivery: Delivery::Sent { at: Utc::now() } }
            }
            Err(e) => {
                // An email that cannot be built now never will be: it fails at once, for staff to
                // see, instead of being tried for a day.
                let retry_at = match e {
                    super::MailError::Build(_) => None,
                    super::MailError::Send(_) => next_attempt(email.attempts, email.first_attempt_at, Utc::now()),
                };
                let error = crate::domain::mask_addresses(&e.to_string());
                tracing::warn!(outbox = email.id, attempts = email.attempts, %error, ?retry_at, "email not sent");
                crate::metrics::email(if retry_at.is_some() { "retrying" } else { "failed" });
                Tried { id: email.id, delivery: Delivery::Failed { retry_at, error: e.to_string() } }
            }
        }
    }
}

/// Exponential backoff from 2 s up to an hour, with jitter so that many emails do not
/// return together; `None` once the first attempt is more than a day old.
pub fn next_attempt(attempts: i64, first_attempt_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if now - first_attempt_at > GIVE_UP_AFTER {
        return None;
    }
    let exponent = u32::try_from(attempts.clamp(1, 12)).unwrap_or(12);
    let base = (2_i64.pow(exponent)).min(3600);
    let jitter = i64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 1024;
    Some(now + chrono::Duration::seconds(base + jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_an_hour_and_stops_after_a_day() {
        let start: DateTime<Utc> = "2026-11-17T12:00:00Z".parse().expect("instant");
        let wait = |attempts, now: DateTime<Utc>| next_attempt(attempts, start, now).map(|t| (t - now).num_seconds());
        let first = wait(1, start).expect("retried");
        assert!((2..3).contains(&first), "{first}");
        let later = wait(20, start).expect("retried");
        assert!((3600..=3600 + 900).contains(&later), "{later}");
        assert!(wait(40, start + chrono::Duration::hours(25)).is_some(), "still trying after 24 hours");
        assert_eq!(wait(40, start + chrono::Duration::hours(27)), None);
    }
}
