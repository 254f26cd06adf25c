//! Paid one-off gifts that arrive together are booked together. Most webhook events are
//! these; under load one statement and one commit then serve a whole batch of deliveries
//! instead of one each, and an idle service books each gift alone as it comes, with no wait.
//!
//! One task takes the gifts waiting in a queue, books them with the engine's statement (a few
//! batches at once, so that the database is not idle while one commits) and answers each
//! delivery with its own outcome. Two gifts with the same event or payment never
//! share a batch (the second waits for the next), so each keeps the outcome the general path
//! would give it. When a batch cannot be booked, every delivery in it is answered "book it
//! alone" and takes the general path, so one bad event cannot fail the others.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::StoreError;
use crate::domain::{EventOutcome, Pence, ReceivedEvent};

/// The most gifts in one statement.
const MOST: usize = 64;
/// Batches being booked at once.
const AT_ONCE: usize = 4;
/// Deliveries waiting beyond this many hold their requests until the booker catches up.
const QUEUE: usize = 1024;

/// A paid one-off gift as the webhook brings it, to be stored and booked with its event.
#[derive(Clone, Debug)]
pub(super) struct PaidGift {
    pub event: ReceivedEvent,
    pub received_at: DateTime<Utc>,
    pub counts_on: NaiveDate,
    pub payment: String,
    pub amount: Pence,
    pub donation: Option<String>,
    pub email: Option<String>,
    pub customer: Option<String>,
}

impl PaidGift {
    fn collides_with(&self, other: &PaidGift) -> bool {
        self.event.id == other.event.id || self.payment == other.payment
    }
}

/// Books a batch in one go: one outcome per gift, in the batch's order, or an error and nothing booked.
pub(super) type BookBatch =
    Box<dyn Fn(Vec<PaidGift>) -> BoxFuture<'static, Result<Vec<EventOutcome>, StoreError>> + Send + Sync>;

type Answer = oneshot::Sender<Option<EventOutcome>>;

/// The queue to the booking task, which runs as long as the queue is kept.
pub(super) struct GiftQueue {
    sender: mpsc::Sender<(PaidGift, Answer)>,
}

impl GiftQueue {
    pub(super) fn start(book: BookBatch) -> GiftQueue {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(receiver, book));
        GiftQueue { sender }
    }

    /// The gift's outcome once its batch is committed; `None` when it must take the general path.
    pub(super) async fn book(&self, gift: PaidGift) -> Option<EventOutcome> {
        let (answer, outcome) = oneshot::channel();
        self.sender.send((gift, answer)).await.ok()?;
        outcome.await.ok().flatten()
    }
}

async fn run(mut receiver: mpsc::Receiver<(PaidGift, Answer)>, book: BookBatch) {
    let book = Arc::new(book);
    let slots = Arc::new(Semaphore::new(AT_ONCE));
    let mut waiting = VecDeque::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        if waiting.is_empty() {
            match receiver.recv().await {
                Some(first) => waiting.push_back(first),
                None => return,
            }
        }
        // Never more than a batch's worth taken from the queue, so that its bound holds.
        while waiting.len() < MOST
            && let Ok(next) = receiver.try_recv()
        {
            waiting.push_back(next);
        }
        let (gifts, answers) = next_batch(&mut waiting);
        crate::metrics::gift_batch(gifts.len());
        let book = book.clone();
        tokio::spawn(async move {
            answer(answers, book(gifts).await);
            drop(slot);
        });
    }
}

fn answer(answers: Vec<Answer>, booked: Result<Vec<EventOutcome>, StoreError>) {
    match booked {
        Ok(outcomes) if outcomes.len() == answers.len() => {
            // A delivery may have gone (its sender hung up): its gift is booked all the same.
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(Some(outcome));
            }
        }
        Ok(outcomes) => {
            tracing::error!(
                gifts = answers.len(),
                outcomes = outcomes.len(),
                "a batch of gifts gave the wrong number of outcomes"
            );
            each_alone(answers);
        }
        Err(e) => {
            tracing::warn!(error = %e, gifts = answers.len(), "cannot book a batch of gifts; booking each alone");
            each_alone(answers);
        }
    }
}

fn each_alone(answers: Vec<Answer>) {
    for answer in answers {
        let _ = answer.send(None);
    }
}

/// Takes from the front of the queue up to `MOST` gifts of which no two collide; the rest wait.
fn next_batch(waiting: &mut VecDeque<(PaidGift, Answer)>) -> (Vec<PaidGift>, Vec<Answer>) {
    let mut gifts: Vec<PaidGift> = Vec::new();
    let mut answers = Vec::new();
    let mut later = VecDeque::new();
    for (gift, answer) in waiting.drain(..) {
        if gifts.len() < MOST && !gifts.iter().any(|g| g.collides_with(&gift)) {
            gifts.push(gift);
            answers.push(answer);
        } else {
            later.push_back((gift, answer));
        }
    }
    *waiting = later;
    (gifts, answers)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn gift(event: &str, payment: &str) -> PaidGift {
        PaidGift {
            event: ReceivedEvent {
                id: event.to_owned(),
                kind: "checkout.session.completed".to_owned(),
                created: Utc::now(),
                payload: "{}".to_owned(),
            },
            received_at: Utc::now(),
            counts_on: Utc::now().date_naive(),
            payment: payment.to_owned(),
            amount: Pence(2500),
            donation: None,
            email: None,
            customer: None,
        }
    }

    fn waiting(gifts: Vec<PaidGift>) -> VecDeque<(PaidGift, Answer)> {
        gifts.into_iter().map(|g| (g, oneshot::channel().0)).collect()
    }

    fn ids(gifts: &[PaidGift]) -> Vec<&str> {
        gifts.iter().map(|g| g.event.id.as_str()).collect()
    }

    #[test]
    fn gifts_with_the_same_event_or_payment_go_in_different_batches() {
        let mut queue = waiting(vec![gift("e1", "p1"), gift("e1", "p1"), gift("e2", "p1"), gift("e3", "p3")]);
        let (first, _) = next_batch(&mut queue);
        assert_eq!(ids(&first), ["e1", "e3"]);
        let (second, _) = next_batch(&mut queue);
        assert_eq!(ids(&second), ["e1"]);
        let (third, _) = next_batch(&mut queue);
        assert_eq!(ids(&third), ["e2"]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_batch_holds_at_most_most() {
        let mut queue = waiting((0..MOST + 3).map(|n| gift(&format!("e{n}"), &format!("p{n}"))).collect());
        assert_eq!(next_batch(&mut queue).0.len(), MOST);
        assert_eq!(next_batch(&mut queue).0.len(), 3);
    }

    #[tokio::test]
    async fn each_delivery_hears_its_own_outcome_and_a_failed_batch_sends_each_alone() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let queue = GiftQueue::start(Box::new(move |gifts: Vec<PaidGift>| {
            let seen = seen.clone();
            Box::pin(async move {
                let ids: Vec<String> = gifts.iter().map(|g| g.event.id.clone()).collect();
                seen.lock().expect("lock").push(ids);
                if gifts.iter().any(|g| g.event.id == "bad") {
                    return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
                }
                Ok(gifts.iter().map(|g| EventOutcome::processed(g.payment != "p0")).collect())
            })
        }));
        let (a, b) = tokio::join!(queue.book(gift("e0", "p0")), queue.book(gift("e1", "p1")));
        assert_eq!(a, Some(EventOutcome::processed(false)));
        assert_eq!(b, Some(EventOutcome::processed(true)));
        assert_eq!(queue.book(gift("bad", "p2")).await, None);
        assert_eq!(batches.lock().expect("lock").iter().flatten().count(), 3);
    }
}
