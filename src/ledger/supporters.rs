//! The rules for monthly supporters (SPEC §5, §10, §11): what Stripe says of a subscription and
//! of a supporter's invoices, merged so that a newer word wins whatever order the events arrive
//! in, and the one notice each failure and each ending sends.
//!
//! The merge is order-free: a status is the newest one Stripe gave (ties go to the graver:
//! active < paused < past due), except that an ending is final; terms (amount, pause, period)
//! are the newest subscription's; an invoice keeps its first failure, its newest failure's
//! reason and next attempt, and its payment. A recovery is an invoice paid after it failed.

use chrono::{DateTime, Utc};

use super::{InvoiceRecord, LedgerTx, SupporterRecord};
use crate::domain::{
    Decline, DeclineReason, EmailAddress, Ending, Notice, PaymentFailure, Pence, SubscriptionChange, SubscriptionTerms,
    SupporterNote, SupporterStatus,
};

impl SupporterRecord {
    /// A supporter first heard of at `at`, in `status`.
    fn first_heard(subscription: &str, status: SupporterStatus, at: DateTime<Utc>) -> SupporterRecord {
        SupporterRecord {
            subscription: subscription.to_owned(),
            donation: None,
            customer: None,
            person: None,
            status,
            status_at: at,
            terms: SubscriptionTerms::default(),
            terms_at: None,
            started_at: at,
            ending: None,
            ended_at: None,
        }
    }

    /// Stripe said the supporter was in `status` at `at`.
    pub(super) fn observe_status(&mut self, status: SupporterStatus, at: DateTime<Utc>) {
        let cancelled = SupporterStatus::Cancelled;
        if (self.status == cancelled) != (status == cancelled) {
            // An ending is final, however old the word of it.
            if status == cancelled {
                (self.status, self.status_at) = (status, at);
            }
        } else if (at, status) > (self.status_at, self.status) {
            (self.status, self.status_at) = (status, at);
        }
    }

    /// Stripe said the subscription's terms were `terms` at `at` (`None`: only an invoice said
    /// what it asked for, which any word of the subscription's overrides).
    pub(super) fn observe_terms(&mut self, terms: &SubscriptionTerms, at: Option<DateTime<Utc>>) {
        if (at, terms) > (self.terms_at, &self.terms) {
            self.terms = terms.clone();
            self.terms_at = at;
        }
    }

    /// It ended `ending`, at `at`; the first ending told is kept.
    pub(super) fn observe_ending(&mut self, ending: Ending, at: DateTime<Utc>) {
        if self.ended_at.zip(self.ending).is_none_or(|known| (at, ending) < known) {
            (self.ending, self.ended_at) = (Some(ending), Some(at));
        }
    }
}

impl InvoiceRecord {
    fn new(invoice: &str, subscription: &str, amount: Pence) -> InvoiceRecord {
        InvoiceRecord {
            invoice: invoice.to_owned(),
            subscription: subscription.to_owned(),
            amount,
            first_failed_at: None,
            failed_at: None,
            decline: None,
            next_attempt: None,
            paid_at: None,
        }
    }

    /// A payment attempt failed at `at`: the newest failure's reason and next attempt are kept,
    /// its reason only when Stripe told it.
    pub(super) fn observe_failure(
        &mut self,
        at: DateTime<Utc>,
        decline: Option<&Decline>,
        next_attempt: Option<DateTime<Utc>>,
    ) {
        self.first_failed_at = Some(self.first_failed_at.map_or(at, |first| first.min(at)));
        if self.failed_at.is_none_or(|newest| at >= newest) {
            self.failed_at = Some(at);
            self.next_attempt = next_attempt;
            if let Some(decline) = decline {
                self.decline = Some(decline.clone());
            }
        } else if self.decline.is_none() {
            self.decline = decline.cloned();
        }
    }

    /// It was paid at `at` (the earliest word of it is kept).
    pub(super) fn observe_paid(&mut self, at: DateTime<Utc>) {
        self.paid_at = Some(self.paid_at.map_or(at, |paid| paid.min(at)));
    }
}

/// `checkout.session.completed` in subscription mode: the supporter, active, at the amount chosen.
pub(super) async fn started<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    subscription: &str,
    customer: Option<&str>,
    amount: Pence,
    donation: Option<&str>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), E> {
    let mut supporter = tx
        .supporter(subscription)
        .await?
        .unwrap_or_else(|| SupporterRecord::first_heard(subscription, SupporterStatus::Active, at));
    supporter.donation = supporter.donation.or_else(|| donation.map(str::to_owned));
    supporter.customer = supporter.customer.or_else(|| customer.map(str::to_owned));
    supporter.started_at = supporter.started_at.min(at);
    supporter.observe_status(SupporterStatus::Active, at);
    supporter.observe_terms(&SubscriptionTerms { amount, ..SubscriptionTerms::default() }, Some(at));
    identify(tx, &mut supporter, None, now).await?;
    tx.save_supporter(&supporter).await
}

/// A supporter's invoice was paid at `at` (its money is counted by the caller): they are active
/// again, and an invoice that had failed is recovered; the invoice's `customer_email` (else the
/// address on their form) tells who they are. Returns the supporter's donation.
pub(super) async fn paid<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    invoice: &str,
    subscription: &str,
    amount: Pence,
    email: Option<&str>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<String>, E> {
    // The first invoice may come before the checkout that starts the supporter.
    let known = tx.supporter(subscription).await?;
    let before = known.clone();
    let mut supporter =
        known.unwrap_or_else(|| SupporterRecord::first_heard(subscription, SupporterStatus::Active, at));
    supporter.observe_status(SupporterStatus::Active, at);
    supporter.observe_terms(&SubscriptionTerms { amount, ..SubscriptionTerms::default() }, None);
    identify(tx, &mut supporter, email, now).await?;
    tx.save_supporter(&supporter).await?;
    let mut record =
        tx.supporter_invoice(invoice).await?.unwrap_or_else(|| InvoiceRecord::new(invoice, subscription, amount));
    let recovered = record.first_failed_at.is_some() && record.paid_at.is_none();
    record.observe_paid(at);
    tx.save_supporter_invoice(&record).await?;
    if recovered {
        tx.note_supporter_change(subscription, &SupporterNote::Recovered { amount }, at, now).await?;
    }
    note_changes(tx, before.as_ref(), &supporter, now).await?;
    Ok(supporter.donation)
}

/// `invoice.payment_failed`: the supporter is past due, and told once per invoice what the bank
/// said and how to put it right, unless the invoice was paid or the gift ended meanwhile.
pub(super) async fn payment_failed<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    failure: &PaymentFailure,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), E> {
    let PaymentFailure { invoice, subscription, amount, .. } = failure;
    let known = tx.supporter(subscription).await?;
    let before = known.clone();
    let mut supporter =
        known.unwrap_or_else(|| SupporterRecord::first_heard(subscription, SupporterStatus::PastDue, at));
    supporter.customer = supporter.customer.or_else(|| failure.customer.clone());
    supporter.observe_status(SupporterStatus::PastDue, at);
    supporter.observe_terms(&SubscriptionTerms { amount: *amount, ..SubscriptionTerms::default() }, None);
    identify(tx, &mut supporter, None, now).await?;
    tx.save_supporter(&supporter).await?;
    let mut record =
        tx.supporter_invoice(invoice).await?.unwrap_or_else(|| InvoiceRecord::new(invoice, subscription, *amount));
    let first_failure = record.first_failed_at.is_none();
    record.observe_failure(at, failure.decline.as_ref(), failure.next_attempt);
    tx.save_supporter_invoice(&record).await?;
    if first_failure {
        let reason = record.decline.as_ref().map_or(DeclineReason::Other, |d| d.reason);
        let note = SupporterNote::PaymentFailed { amount: *amount, reason };
        tx.note_supporter_change(subscription, &note, at, now).await?;
    }
    note_changes(tx, before.as_ref(), &supporter, now).await?;
    if record.paid_at.is_some() || supporter.status == SupporterStatus::Cancelled {
        return Ok(());
    }
    let address = match &failure.email {
        Some(email) => Some(email.clone()),
        None => address_of(tx, &supporter).await?,
    };
    if let Some(address) = address {
        let decline = record.decline.as_ref();
        let notice = Notice::PaymentFailed {
            amount: *amount,
            reason: decline.map_or(DeclineReason::Other, |d| d.reason),
            direct_debit: decline.is_some_and(|d| d.direct_debit),
            next_attempt_on: failure.next_attempt_on,
        };
        tx.enqueue_once(&address, &notice, &format!("payment-failed-{invoice}"), invoice, now).await?;
    }
    Ok(())
}

/// `customer.subscription.updated` / `.deleted`: the subscription as Stripe says it was at `at`.
/// An ending sends its one notice: "stopped" when payments failed, a thank-you otherwise.
pub(super) async fn changed<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    change: &SubscriptionChange,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), E> {
    let subscription = change.subscription.as_str();
    let known = tx.supporter(subscription).await?;
    let before = known.clone();
    let mut supporter = known.unwrap_or_else(|| SupporterRecord::first_heard(subscription, change.status, at));
    supporter.customer = supporter.customer.or_else(|| change.customer.clone());
    supporter.started_at = supporter.started_at.min(change.started_at);
    supporter.observe_status(change.status, at);
    supporter.observe_terms(&change.terms, Some(at));
    if let Some(ending) = change.ending {
        supporter.observe_ending(ending, at);
    }
    identify(tx, &mut supporter, None, now).await?;
    tx.save_supporter(&supporter).await?;
    note_changes(tx, before.as_ref(), &supporter, now).await?;
    let newly_ended = before.as_ref().is_none_or(|b| b.ending.is_none());
    if let (true, Some(ending)) = (newly_ended, supporter.ending)
        && let Some(address) = address_of(tx, &supporter).await?
    {
        let amount = supporter.terms.amount;
        let notice = match ending {
            Ending::Involuntary => Notice::SupportStopped { amount },
            Ending::Voluntary => Notice::SupportEnded { amount },
        };
        tx.enqueue_once(&address, &notice, &format!("supporter-ended-{subscription}"), subscription, now).await?;
    }
    Ok(())
}

/// Who the supporter is, once money shows it: the person with `email` (the invoice's
/// `customer_email`, on a paid invoice), else with the address on their form (paid when the
/// checkout completed), else with the address their customer's counted payments went to; found
/// or made by `make_person`, the one rule by which money makes people (issue 16, item 4). Only
/// the supporter's reader queries, their erasure's refusal and the retention job read it: a
/// subscription set up without our `metadata.donation` (Stripe's dashboard, a Payment Link) is
/// its person's like any other. Kept once known.
async fn identify<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    supporter: &mut SupporterRecord,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), E> {
    if supporter.person.is_some() {
        return Ok(());
    }
    let address = match email {
        Some(email) => Some(email.to_owned()),
        None => address_of(tx, supporter).await?,
    };
    if let Some(Ok(email)) = address.as_deref().map(EmailAddress::parse) {
        supporter.person = Some(tx.make_person(&email.key(), email.as_str(), None, now).await?);
    }
    Ok(())
}

/// Where a supporter's notices go when the event names no address: the address on their form,
/// else the one their newest payment went to.
async fn address_of<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    supporter: &SupporterRecord,
) -> Result<Option<String>, E> {
    if let Some(donation) = &supporter.donation
        && let Some(email) = tx.donation(donation).await?.and_then(|d| d.email)
    {
        return Ok(Some(email));
    }
    match &supporter.customer {
        Some(customer) => tx.customer_email(customer).await,
        None => Ok(None),
    }
}

/// What staff see of a change: pauses, a paused gift's new resume date, resumptions, new
/// amounts, cancellations at the period's end and their withdrawal, and endings.
async fn note_changes<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    before: Option<&SupporterRecord>,
    after: &SupporterRecord,
    now: DateTime<Utc>,
) -> Result<(), E> {
    let Some(before) = before else {
        return Ok(());
    };
    let mut changes = Vec::new();
    let paused = |s: &SupporterRecord| s.status == SupporterStatus::Paused;
    if !paused(before) && paused(after) {
        changes.push(SupporterNote::Paused { until: after.terms.paused_until });
    }
    if paused(before) && paused(after) && before.terms.paused_until != after.terms.paused_until {
        changes.push(SupporterNote::PauseEndMoved { from: before.terms.paused_until, to: after.terms.paused_until });
    }
    if paused(before) && matches!(after.status, SupporterStatus::Active | SupporterStatus::PastDue) {
        changes.push(SupporterNote::Resumed);
    }
    if before.terms_at.is_some() && after.terms_at.is_some() && before.terms.amount != after.terms.amount {
        changes.push(SupporterNote::AmountChanged { from: before.terms.amount, to: after.terms.amount });
    }
    // An ending says it all: the last word of a deleted subscription withdraws nothing.
    let ended = after.status == SupporterStatus::Cancelled;
    match (before.terms.cancel_at_period_end, after.terms.cancel_at_period_end) {
        (false, true) => changes.push(SupporterNote::CancelAtPeriodEnd { ends: after.terms.next_payment_at }),
        (true, false) if !ended => changes.push(SupporterNote::CancellationWithdrawn),
        _ => {}
    }
    if before.ending.is_none()
        && let Some(ending) = after.ending
    {
        changes.push(SupporterNote::Ended { ending });
    }
    let at = after.status_at.max(after.terms_at.unwrap_or(after.status_at));
    for change in changes {
        tx.note_supporter_change(&after.subscription, &change, at, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::super::CampaignRef;
    use super::super::fake::FakeLedger;
    use super::super::rules::apply_event;
    use super::*;
    use crate::domain::{EventOutcome, PaymentEvent, ReceivedEvent};

    const SUB: &str = "sub_1";

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-11-02T09:00:00Z".parse::<DateTime<Utc>>().expect("instant") + chrono::Duration::minutes(minute)
    }

    fn day() -> NaiveDate {
        "2026-11-02".parse().expect("date")
    }

    fn ledger() -> FakeLedger {
        FakeLedger { fund: Some(CampaignRef { id: 1, title: "Fighting fund".into() }), ..FakeLedger::default() }
    }

    fn terms(amount: i64) -> SubscriptionTerms {
        SubscriptionTerms {
            amount: Pence(amount),
            next_payment_at: Some(at(60 * 24 * 30)),
            ..SubscriptionTerms::default()
        }
    }

    fn changed(status: SupporterStatus, terms: SubscriptionTerms, ending: Option<Ending>) -> PaymentEvent {
        PaymentEvent::SubscriptionChanged(SubscriptionChange {
            subscription: SUB.into(),
            customer: Some("cus_1".into()),
            started_at: at(0),
            status,
            terms,
            ending,
        })
    }

    fn failed(invoice: &str, reason: DeclineReason, next: Option<i64>) -> PaymentEvent {
        PaymentEvent::SupporterPaymentFailed(PaymentFailure {
            invoice: invoice.into(),
            subscription: SUB.into(),
            amount: Pence(1000),
            email: Some("sam@example.org".into()),
            customer: Some("cus_1".into()),
            next_attempt: next.map(at),
            next_attempt_on: next.map(|_| day()),
            decline: Some(Decline { reason, direct_debit: false, detail: None }),
        })
    }

    fn paid(invoice: &str, amount: i64) -> PaymentEvent {
        PaymentEvent::SupporterPaid {
            invoice: invoice.into(),
            subscription: SUB.into(),
            amount: Pence(amount),
            counts_on: day(),
            email: Some("sam@example.org".into()),
            customer: Some("cus_1".into()),
        }
    }

    /// A supporter's year in events: each (id, minute Stripe says it happened, meaning).
    fn story() -> Vec<(String, i64, PaymentEvent)> {
        let paused = SubscriptionTerms { paused: true, paused_until: Some(at(90_000)), ..terms(1000) };
        let events = [
            (
                0,
                PaymentEvent::SupporterStarted {
                    subscription: SUB.into(),
                    customer: Some("cus_1".into()),
                    amount: Pence(1000),
                    donation: None,
                },
            ),
            (1, paid("in_1", 1000)),
            (1, changed(SupporterStatus::Active, terms(1000), None)),
            (100, failed("in_2", DeclineReason::InsufficientFunds, Some(200))),
            (101, changed(SupporterStatus::PastDue, terms(1000), None)),
            (200, failed("in_2", DeclineReason::ExpiredCard, Some(300))),
            (250, paid("in_2", 1000)),
            (251, changed(SupporterStatus::Active, terms(1000), None)),
            (300, changed(SupporterStatus::Paused, paused, None)),
            (400, changed(SupporterStatus::Active, terms(1500), None)),
            (500, failed("in_3", DeclineReason::CardDeclined, Some(600))),
            (600, failed("in_3", DeclineReason::CardDeclined, None)),
            (700, changed(SupporterStatus::Cancelled, terms(1500), Some(Ending::Involuntary))),
        ];
        events.into_iter().enumerate().map(|(n, (minute, meaning))| (format!("evt_{n}"), minute, meaning)).collect()
    }

    fn deliver(tx: &mut FakeLedger, id: &str, minute: i64, meaning: &PaymentEvent) -> EventOutcome {
        let event = ReceivedEvent { id: id.into(), kind: "test".into(), created: at(minute), payload: "{}".into() };
        let Ok(outcome) = futures::executor::block_on(apply_event(tx, &event, meaning, false, at(10_000)));
        outcome
    }

    /// What must not depend on the order: the supporter, their invoices, the money, the counts.
    fn summary(tx: &FakeLedger) -> (SupporterRecord, Vec<InvoiceRecord>, i64, usize) {
        let recovered = tx.invoices.values().filter(|i| i.first_failed_at.zip(i.paid_at).is_some_and(|(f, p)| f < p));
        (
            tx.supporters[SUB].clone(),
            tx.invoices.values().cloned().collect(),
            tx.totals.get(&1).map_or(0, |t| t.0.0),
            recovered.count(),
        )
    }

    fn notices(tx: &FakeLedger, which: fn(&Notice) -> bool) -> Vec<&Notice> {
        tx.outbox.iter().map(|(_, n)| n).filter(|n| which(n)).collect()
    }

    #[test]
    fn a_supporters_year_ends_as_stripe_says() {
        let mut tx = ledger();
        for (id, minute, meaning) in story() {
            deliver(&mut tx, &id, minute, &meaning);
        }
        let (supporter, invoices, raised, recovered) = summary(&tx);
        assert_eq!(supporter.status, SupporterStatus::Cancelled);
        assert_eq!(supporter.ending, Some(Ending::Involuntary));
        assert_eq!(supporter.terms.amount, Pence(1500), "the amount follows Stripe");
        assert_eq!(raised, 2000, "two payments counted");
        assert_eq!(recovered, 1, "in_2 failed, then was paid");
        let stopped = notices(&tx, |n| matches!(n, Notice::SupportStopped { .. } | Notice::SupportEnded { .. }));
        assert_eq!(stopped, [&Notice::SupportStopped { amount: Pence(1500) }]);
        let in_3 = invoices.iter().find(|i| i.invoice == "in_3").expect("in_3");
        assert_eq!(in_3.next_attempt, None, "Stripe's last word: no more attempts");
        let failures = notices(&tx, |n| matches!(n, Notice::PaymentFailed { .. }));
        assert_eq!(failures.len(), 2, "one notice per invoice, not per retry: {failures:?}");
        let london: chrono_tz::Tz = "Europe/London".parse().expect("zone");
        let changes: Vec<String> = tx.supporter_changes.iter().map(|(_, change, _)| change.words(london)).collect();
        for expected in ["Paused until", "Resumed", "Monthly amount changed from £10.00 to £15.00", "recovered"] {
            assert!(changes.iter().any(|c| c.contains(expected)), "{expected:?} in {changes:?}");
        }
    }

    #[test]
    fn a_failure_told_after_its_invoice_was_paid_sends_nothing_and_an_old_word_changes_nothing() {
        let mut tx = ledger();
        deliver(&mut tx, "paid", 250, &paid("in_2", 1000));
        deliver(&mut tx, "failed", 100, &failed("in_2", DeclineReason::ExpiredCard, Some(200)));
        assert_eq!(tx.supporters[SUB].status, SupporterStatus::Active);
        assert!(!tx.outbox.iter().any(|(_, n)| matches!(n, Notice::PaymentFailed { .. })));
        deliver(&mut tx, "new", 300, &changed(SupporterStatus::Active, terms(1500), None));
        deliver(&mut tx, "old", 260, &changed(SupporterStatus::PastDue, terms(1200), None));
        assert_eq!(
            (tx.supporters[SUB].status, tx.supporters[SUB].terms.amount),
            (SupporterStatus::Active, Pence(1500))
        );
    }

    #[test]
    fn staff_see_a_new_resume_date_and_a_cancellation_set_and_withdrawn() {
        let mut tx = ledger();
        deliver(&mut tx, "started", 1, &changed(SupporterStatus::Active, terms(1000), None));
        let until = |minute| SubscriptionTerms { paused: true, paused_until: Some(at(minute)), ..terms(1000) };
        deliver(&mut tx, "paused", 10, &changed(SupporterStatus::Paused, until(50_000), None));
        deliver(&mut tx, "longer", 20, &changed(SupporterStatus::Paused, until(90_000), None));
        deliver(&mut tx, "resumed", 30, &changed(SupporterStatus::Active, terms(1000), None));
        let cancelling = SubscriptionTerms { cancel_at_period_end: true, ..terms(1000) };
        deliver(&mut tx, "cancel", 40, &changed(SupporterStatus::Active, cancelling.clone(), None));
        deliver(&mut tx, "keep", 50, &changed(SupporterStatus::Active, terms(1000), None));
        deliver(&mut tx, "cancel again", 60, &changed(SupporterStatus::Active, cancelling, None));
        // Stripe's last word of a deleted subscription need not repeat `cancel_at_period_end`.
        deliver(&mut tx, "deleted", 70, &changed(SupporterStatus::Cancelled, terms(1000), Some(Ending::Voluntary)));
        let mut notes: Vec<(i64, SupporterNote)> =
            tx.supporter_changes.iter().map(|(_, note, when)| ((*when - at(0)).num_minutes(), note.clone())).collect();
        notes.sort();
        let ends = Some(at(60 * 24 * 30));
        assert_eq!(
            notes,
            [
                (10, SupporterNote::Paused { until: Some(at(50_000)) }),
                (20, SupporterNote::PauseEndMoved { from: Some(at(50_000)), to: Some(at(90_000)) }),
                (30, SupporterNote::Resumed),
                (40, SupporterNote::CancelAtPeriodEnd { ends }),
                (50, SupporterNote::CancellationWithdrawn),
                (60, SupporterNote::CancelAtPeriodEnd { ends }),
                (70, SupporterNote::Ended { ending: Ending::Voluntary }),
            ]
        );
    }

    #[test]
    fn a_reader_who_cancels_is_thanked_once() {
        let mut tx = ledger();
        deliver(&mut tx, "paid", 1, &paid("in_1", 1000));
        let ended = changed(SupporterStatus::Cancelled, terms(1000), Some(Ending::Voluntary));
        deliver(&mut tx, "deleted", 50, &ended);
        deliver(&mut tx, "deleted again", 51, &ended);
        let thanks: Vec<_> = tx.outbox.iter().filter(|(_, n)| matches!(n, Notice::SupportEnded { .. })).collect();
        assert_eq!(thanks, [&("sam@example.org".to_owned(), Notice::SupportEnded { amount: Pence(1000) })]);
        assert_eq!(tx.supporters[SUB].ending, Some(Ending::Voluntary));
    }

    fn any_order() -> impl Strategy<Value = Vec<usize>> {
        let n = story().len();
        proptest::collection::vec(0..n, 0..n).prop_flat_map(move |again| {
            let all: Vec<usize> = (0..n).chain(again).collect();
            Just(all).prop_shuffle()
        })
    }

    proptest! {
        /// SPEC §5: events late, twice and in any order leave the statuses and counts that
        /// delivery in order leaves; an ending's notice goes once and no invoice is told twice.
        #[test]
        fn events_in_any_order_give_the_same_statuses_and_counts(order in any_order()) {
            let events = story();
            let mut in_order = ledger();
            for (id, minute, meaning) in &events {
                deliver(&mut in_order, id, *minute, meaning);
            }
            let mut shuffled = ledger();
            for n in order {
                let (id, minute, meaning) = &events[n];
                deliver(&mut shuffled, id, *minute, meaning);
            }
            prop_assert_eq!(summary(&shuffled), summary(&in_order));
            let failures = notices(&shuffled, |n| matches!(n, Notice::PaymentFailed { .. }));
            prop_assert!(failures.len() <= 2, "at most one notice per failed invoice: {:?}", failures);
            let endings = notices(&shuffled, |n| matches!(n, Notice::SupportStopped { .. } | Notice::SupportEnded { .. }));
            prop_assert!(endings.len() <= 1, "one ending, told once: {:?}", endings);
        }
    }
}
