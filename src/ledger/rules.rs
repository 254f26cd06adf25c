//! The rules: what each kind of event does (SPEC §5–§7). Every figure, state and email that
//! means something is decided here; the primitives only store and fetch.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::supporters;
use super::{
    AllotmentLine, ApplicationRecord, ApplicationStatus, CampaignRef, DonationRecord, DonationStatus, LedgerTx,
    Movement, PaymentKind, PaymentRecord,
};
use crate::domain::notice::receipt_number;
use crate::domain::shares::kept_after_refund;
use crate::domain::{DisputeStage, EmailAddress, EventOutcome, Notice, PaymentEvent, Pence, ReceivedEvent};

/// What a one-off gift's receipt says it was for.
const ONE_OFF_GIFT: &str = "a one-off gift";
const SUPPORTER_PAYMENT: &str = "a monthly supporter's payment";
/// Where a consent given with a gift was made, as the reader's consent history says.
const DONATION_FORM: &str = "the donation form";

/// Stores `event` by its id and applies what it means, all in the caller's transaction. A
/// second delivery changes nothing. With `retry`, applies again an event kept as parked,
/// unmatched or unreadable (its reference arrived, or staff asked).
pub async fn apply_event<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    event: &ReceivedEvent,
    meaning: &PaymentEvent,
    retry: bool,
    now: DateTime<Utc>,
) -> Result<EventOutcome, E> {
    // Stored first: a second delivery, even a concurrent one, finds it and changes nothing.
    let fresh = if retry { tx.lock_kept_event(&event.id).await? } else { tx.insert_event(event, now).await? };
    if !fresh {
        return Ok(EventOutcome::Duplicate);
    }
    let outcome = apply(tx, event.created, meaning, now).await?;
    // A new event was stored as processed; only another outcome needs writing.
    if retry || outcome.label() != "processed" {
        let waiting_for = match &outcome {
            EventOutcome::Parked { waiting_for } => Some(waiting_for.as_str()),
            _ => None,
        };
        let note = match meaning {
            PaymentEvent::Unmatched { reason } => Some(reason.as_str()),
            _ => None,
        };
        tx.set_event_status(&event.id, outcome.label(), waiting_for, note, now).await?;
    }
    Ok(outcome)
}

/// What one event means, `at` being when Stripe says it happened.
async fn apply<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    at: DateTime<Utc>,
    meaning: &PaymentEvent,
    now: DateTime<Utc>,
) -> Result<EventOutcome, E> {
    match meaning {
        PaymentEvent::GiftPaid { payment, amount, donation, counts_on, email, customer, .. } => {
            let paid = PaymentRecord {
                payment: payment.clone(),
                kind: PaymentKind::Gift,
                campaign_id: None,
                amount: *amount,
                refunded: Pence::ZERO,
                donation: donation.clone(),
                application: None,
                email: email.clone(),
                customer: customer.clone(),
                paid_at: at,
            };
            let outcome = count_payment(tx, paid, *counts_on, ONE_OFF_GIFT, now).await?;
            if outcome != EventOutcome::Unmatched {
                let ours = move_donation(tx, donation.as_deref(), DonationStatus::Paid, at, now).await?;
                // A gift from outside our form (a Payment Link, Stripe's dashboard) makes its
                // person too, so their page, their erasure and the retention job reach it.
                if !ours
                    && matches!(outcome, EventOutcome::Processed { money_moved: true, .. })
                    && let Some(Ok(email)) = email.as_deref().map(EmailAddress::parse)
                {
                    tx.make_person(&email.key(), email.as_str(), None, now).await?;
                }
            }
            Ok(outcome)
        }
        PaymentEvent::GiftPending { donation, .. } => {
            move_donation(tx, donation.as_deref(), DonationStatus::Processing, at, now).await?;
            Ok(EventOutcome::processed(false))
        }
        PaymentEvent::GiftFailed { donation, .. } => {
            move_donation(tx, donation.as_deref(), DonationStatus::Failed, at, now).await?;
            Ok(EventOutcome::processed(false))
        }
        PaymentEvent::SupporterStarted { subscription, customer, amount, donation } => {
            let donation = match donation {
                Some(id) if tx.donation(id).await?.is_some() => Some(id.clone()),
                _ => None,
            };
            supporters::started(tx, subscription, customer.as_deref(), *amount, donation.as_deref(), at, now).await?;
            move_donation(tx, donation.as_deref(), DonationStatus::Paid, at, now).await?;
            Ok(EventOutcome::processed(false))
        }
        PaymentEvent::SupporterPaid { invoice, subscription, amount, counts_on, email, customer } => {
            let donation = supporters::paid(tx, invoice, subscription, *amount, email.as_deref(), at, now).await?;
            let paid = PaymentRecord {
                payment: invoice.clone(),
                kind: PaymentKind::Supporter,
                campaign_id: None,
                amount: *amount,
                refunded: Pence::ZERO,
                donation,
                application: None,
                email: email.clone(),
                customer: customer.clone(),
                paid_at: at,
            };
            count_payment(tx, paid, *counts_on, SUPPORTER_PAYMENT, now).await
        }
        PaymentEvent::SubscriptionChanged(change) => {
            supporters::changed(tx, change, at, now).await?;
            Ok(EventOutcome::processed(false))
        }
        PaymentEvent::SupporterPaymentFailed(failure) => {
            supporters::payment_failed(tx, failure, at, now).await?;
            Ok(EventOutcome::processed(false))
        }
        PaymentEvent::InvoicePaid { invoice, payment_intent, amount } => {
            let Some(paid) = tx.find_payment(invoice).await? else {
                return Ok(EventOutcome::Parked { waiting_for: invoice.clone() });
            };
            if paid.amount != *amount {
                return Ok(EventOutcome::Unmatched);
            }
            tx.add_reference(payment_intent, &paid.payment).await?;
            // Refunds and disputes of the PaymentIntent may have come first: they wait for it.
            Ok(EventOutcome::Processed { money_moved: false, known: Some(payment_intent.clone()) })
        }
        PaymentEvent::SharesPaid { payment, application, amount, counts_on } => {
            allot(tx, payment, application, *amount, *counts_on, at, now).await
        }
        PaymentEvent::Refunded { payment, refunded_total, refunded_on } => {
            let Some(paid) = tx.find_payment(payment).await? else {
                return Ok(EventOutcome::Parked { waiting_for: payment.clone() });
            };
            refund(tx, paid, *refunded_total, *refunded_on, at, now).await
        }
        PaymentEvent::Disputed { payment, dispute, amount, stage } => {
            let Some(paid) = tx.find_payment(payment).await? else {
                return Ok(EventOutcome::Parked { waiting_for: payment.clone() });
            };
            // A dispute of a share payment is for staff to settle with the member, and nothing
            // takes back more than its payment brought (SPEC §5).
            let Some(campaign_id) = paid.campaign_id.filter(|_| paid.kind != PaymentKind::Shares) else {
                return Ok(EventOutcome::Unmatched);
            };
            if *amount > paid.amount {
                return Ok(EventOutcome::Unmatched);
            }
            // Every stage implies the withdrawal, so a closing that comes first still nets out.
            let withdrawn = Movement {
                campaign_id,
                amount: -*amount,
                gifts: 0,
                source: "stripe",
                // Under the payment's key, so that its page finds it: `{payment}:{dispute}:…`.
                source_id: format!("{}:{dispute}:withdrawn", paid.payment),
                occurred_at: at,
            };
            let mut moved = book(tx, &withdrawn, now).await?;
            if *stage == DisputeStage::Won {
                let reinstated = Movement {
                    amount: *amount,
                    source_id: format!("{}:{dispute}:reinstated", paid.payment),
                    ..withdrawn
                };
                moved |= book(tx, &reinstated, now).await?;
            }
            if moved {
                cap_taken_back(tx, &paid, campaign_id, at, now).await?;
            }
            Ok(EventOutcome::processed(moved))
        }
        PaymentEvent::Unmatched { .. } => Ok(EventOutcome::Unmatched),
        PaymentEvent::Ignored => Ok(EventOutcome::Ignored),
    }
}

/// A payment that arrived: kept with its campaign (the one open on the day Stripe says it
/// succeeded, decided once, here), booked once, and receipted once.
async fn count_payment<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    mut paid: PaymentRecord,
    counts_on: NaiveDate,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<EventOutcome, E> {
    let Some(CampaignRef { id: campaign_id, title }) = tx.campaign_for_day(counts_on).await? else {
        return Ok(EventOutcome::Unmatched);
    };
    paid.campaign_id = Some(campaign_id);
    if !tx.insert_payment(&paid).await? {
        return Ok(EventOutcome::processed(false));
    }
    tx.add_reference(&paid.payment, &paid.payment).await?;
    let movement = Movement {
        campaign_id,
        amount: paid.amount,
        gifts: 1,
        source: "stripe",
        source_id: paid.payment.clone(),
        occurred_at: paid.paid_at,
    };
    let receipt = paid.email.as_deref().map(|email| Receipt {
        email,
        paid_on: counts_on,
        purpose: format!("{purpose} to the {title}"),
    });
    let booked = book_and_receipt(tx, &movement, receipt, now).await?;
    // Events parked waiting for this payment may now apply.
    Ok(EventOutcome::Processed { money_moved: booked, known: Some(paid.payment) })
}

/// A ledger row and its campaign's totals; false, changing nothing, when it was booked before.
async fn book<E: Send>(tx: &mut dyn LedgerTx<Error = E>, movement: &Movement, now: DateTime<Utc>) -> Result<bool, E> {
    if !tx.insert_movement(movement, now).await? {
        return Ok(false);
    }
    tx.add_to_totals(movement, now).await?;
    Ok(true)
}

/// Who a new gift's receipt goes to, and what it says (SPEC §6).
pub struct Receipt<'a> {
    pub email: &'a str,
    /// The London date the gift counts on.
    pub paid_on: NaiveDate,
    /// "a one-off gift to the …", "a gift by cheque to the …".
    pub purpose: String,
}

/// Books a gift once and, the first time, queues its receipt with the next receipt number:
/// how money comes into the ledger whichever door it came through (webhook, staff form, CLI).
/// The receipt is about `movement.source_id` for `movement.amount` pence. False, changing
/// nothing, when the gift was booked before.
pub async fn book_and_receipt<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    movement: &Movement,
    receipt: Option<Receipt<'_>>,
    now: DateTime<Utc>,
) -> Result<bool, E> {
    let booked = book(tx, movement, now).await?;
    if booked && let Some(Receipt { email, paid_on, purpose }) = receipt {
        let notice =
            Notice::Receipt { number: next_receipt(tx, paid_on).await?, amount: movement.amount, paid_on, purpose };
        tx.enqueue(email, &notice, &movement.source_id, now).await?;
    }
    Ok(booked)
}

/// `R-2026-000123`: a number of its own from the service-wide sequence (SPEC §6).
async fn next_receipt<E: Send>(tx: &mut dyn LedgerTx<Error = E>, paid_on: NaiveDate) -> Result<String, E> {
    Ok(receipt_number(paid_on.year(), tx.next_receipt_number().await?))
}

/// Moves a donation on, never back: paid and failed are final, and a reader who turned back
/// at the payment page and paid after all has paid. Paid, it makes its person. False when
/// there is no such donation of ours.
async fn move_donation<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    donation: Option<&str>,
    to: DonationStatus,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, E> {
    let Some(id) = donation else { return Ok(false) };
    let Some(DonationRecord { status: from, email, name, marketing_consent }) = tx.donation(id).await? else {
        return Ok(false);
    };
    use DonationStatus::{Cancelled, Failed, Paid, Pending, Processing};
    let allowed = match to {
        Paid => matches!(from, Pending | Processing | Cancelled),
        Processing => matches!(from, Pending | Cancelled),
        Failed => matches!(from, Pending | Processing),
        Pending | Cancelled => false,
    };
    if !allowed {
        return Ok(true);
    }
    let person = match (to, email.as_deref().map(EmailAddress::parse)) {
        (Paid, Some(Ok(email))) => Some(tx.make_person(&email.key(), email.as_str(), name.as_deref(), now).await?),
        _ => None,
    };
    tx.set_donation_status(id, to, (to == Paid).then_some(at), person).await?;
    // The form's answer joins the person's consent history, true from the payment (SPEC §10).
    if let Some(person) = person {
        tx.note_consent(person, marketing_consent, DONATION_FORM, at).await?;
    }
    Ok(true)
}

/// Keeps what a payment's refunds and disputes take back, together, to at most what it brought
/// (SPEC §5): each is booked as Stripe says, and a correction under `{payment}:cap:{n}` puts
/// back whatever they took beyond it. The figures depend only on what Stripe said, not on the
/// order it said it in: a gift of £25 refunded and disputed (and the dispute lost) is £0 either way.
async fn cap_taken_back<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    paid: &PaymentRecord,
    campaign_id: i64,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), E> {
    let cap = format!("{}:cap:", paid.payment);
    let rows = tx.movements_after(&paid.payment).await?;
    let (caps, claims): (Vec<_>, Vec<_>) = rows.iter().partition(|(id, _)| id.starts_with(&cap));
    let claimed = -claims.iter().map(|(_, pence)| pence.0).sum::<i64>();
    let put_back = claimed - claimed.min(paid.amount.0);
    let already = caps.iter().map(|(_, pence)| pence.0).sum::<i64>();
    if put_back != already {
        let correction = Movement {
            campaign_id,
            amount: Pence(put_back - already),
            gifts: 0,
            source: "stripe",
            source_id: format!("{cap}{}", caps.len() + 1),
            occurred_at: at,
        };
        book(tx, &correction, now).await?;
    }
    Ok(())
}

/// Stripe's running total of refunds of a payment: only what is new is booked, whatever the order.
async fn refund<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    paid: PaymentRecord,
    refunded_total: Pence,
    refunded_on: NaiveDate,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<EventOutcome, E> {
    // Nothing takes back more than its payment brought (SPEC §5).
    if refunded_total > paid.amount {
        return Ok(EventOutcome::Unmatched);
    }
    if paid.kind == PaymentKind::Shares {
        return refund_shares(tx, paid, refunded_total, refunded_on, at, now).await;
    }
    let Some(campaign_id) = paid.campaign_id else {
        return Ok(EventOutcome::Unmatched);
    };
    if refunded_total <= paid.refunded {
        return Ok(EventOutcome::processed(false));
    }
    tx.set_refunded(&paid.payment, refunded_total).await?;
    let movement = Movement {
        campaign_id,
        amount: paid.refunded - refunded_total,
        gifts: 0,
        source: "stripe",
        source_id: format!("{}:refunded:{}", paid.payment, refunded_total.0),
        occurred_at: at,
    };
    let booked = book(tx, &movement, now).await?;
    if booked {
        cap_taken_back(tx, &paid, campaign_id, at, now).await?;
    }
    if booked && let Some(email) = &paid.email {
        let title = tx.campaign_title(campaign_id).await?;
        let notice = Notice::Refund {
            amount: refunded_total - paid.refunded,
            refunded_on,
            purpose: format!("your gift to the {title}"),
        };
        tx.enqueue(email, &notice, &paid.payment, now).await?;
    }
    Ok(EventOutcome::processed(booked))
}

/// Allots paid shares: a new member gets the next member number, an existing one adds to their
/// holding, and never has their name or address changed by it (SPEC §7). Breaking the cap, or
/// paying another amount than was applied for, holds the application for staff instead.
async fn allot<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    payment: &str,
    application: &str,
    amount: Pence,
    allotted_on: NaiveDate,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<EventOutcome, E> {
    let Some(app) = tx.application(application).await? else {
        return Ok(EventOutcome::Unmatched);
    };
    if app.payment.is_some() {
        return Ok(EventOutcome::processed(false));
    }
    // The person is made now, by the money, and found by email (SPEC §7: same email, any case).
    let person = match (app.person_id, EmailAddress::parse(&app.email)) {
        (Some(person), _) => person,
        (None, Ok(email)) => tx.make_person(&email.key(), email.as_str(), Some(&app.name), now).await?,
        (None, Err(_)) => return Ok(EventOutcome::Unmatched),
    };
    tx.lock_person(person).await?;
    let member = tx.member_of(person).await?;
    let held = member.as_ref().map_or(Pence::ZERO, |m| m.amount_paid);
    let problem = if amount != app.amount {
        Some(format!("paid {} for shares applied for at {}", amount, app.amount))
    } else if held.0.checked_add(amount.0).is_none_or(|after| after > app.cap.0) {
        Some(format!("allotting {} would take the holding of {} past the cap of {}", amount, held, app.cap))
    } else {
        None
    };
    if let Some(note) = problem {
        tx.settle_application(&app.id, ApplicationStatus::Held, payment, at, Some(&note), person).await?;
        share_payment(tx, payment, &app, amount, None, at).await?;
        return Ok(EventOutcome::Processed { money_moved: false, known: Some(payment.to_owned()) });
    }
    let member_number = match &member {
        Some(m) => m.member_number,
        None => {
            let number = tx.next_member_number().await?;
            tx.insert_member(number, person, &app.id, allotted_on).await?;
            number
        }
    };
    // The address as the member first gave it stays, however a later purchase capitalises it.
    let email = member.is_none().then_some(app.email.as_str());
    tx.change_holding(member_number, app.shares, amount, email, None).await?;
    // A purchase never rewrites the register: another name or address waits for staff (SPEC §7).
    let change_pending = member.as_ref().is_some_and(|m| m.name != app.name || m.address != app.address);
    if change_pending {
        tx.propose_member_change(member_number, &app.id, now).await?;
    }
    let issue = tx.share_issue_for_day(allotted_on).await?;
    let campaign_id = issue.map(|c| c.id);
    let line = AllotmentLine {
        member_number,
        application: app.id.clone(),
        source_id: payment.to_owned(),
        shares: app.shares,
        amount,
        campaign_id,
        allotted_on,
    };
    tx.insert_allotment(&line, now).await?;
    if let Some(campaign_id) = campaign_id {
        let movement = Movement {
            campaign_id,
            amount,
            gifts: 1,
            source: "shares",
            source_id: payment.to_owned(),
            occurred_at: at,
        };
        book(tx, &movement, now).await?;
    }
    tx.settle_application(&app.id, ApplicationStatus::Allotted, payment, at, None, person).await?;
    share_payment(tx, payment, &app, amount, campaign_id, at).await?;
    let held_shares = member.as_ref().map_or(0, |m| m.shares);
    let notice = Notice::Membership {
        number: next_receipt(tx, allotted_on).await?,
        member_number,
        new_member: member.is_none(),
        shares: app.shares,
        amount,
        allotted_on,
        holding_shares: held_shares + app.shares,
        holding_amount: held + amount,
        change_pending,
    };
    tx.enqueue(&app.email, &notice, payment, now).await?;
    Ok(EventOutcome::Processed { money_moved: true, known: Some(payment.to_owned()) })
}

/// A payment for shares, allotted or held, kept as one payment like any other: found by its
/// references, reconciled with Stripe, refunded through it.
async fn share_payment<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    payment: &str,
    app: &ApplicationRecord,
    amount: Pence,
    campaign_id: Option<i64>,
    at: DateTime<Utc>,
) -> Result<(), E> {
    let paid = PaymentRecord {
        payment: payment.to_owned(),
        kind: PaymentKind::Shares,
        campaign_id,
        amount,
        refunded: Pence::ZERO,
        donation: None,
        application: Some(app.id.clone()),
        email: Some(app.email.clone()),
        customer: None,
        paid_at: at,
    };
    tx.insert_payment(&paid).await?;
    tx.add_reference(payment, payment).await
}

/// A refund of a share payment takes back the shares it no longer pays for (the rule is
/// `kept_after_refund`); a member left with none has ceased. The share issue's ticker follows
/// the money, odd pence included; the odd pence are shown to staff on the application.
async fn refund_shares<E: Send>(
    tx: &mut dyn LedgerTx<Error = E>,
    paid: PaymentRecord,
    refunded_total: Pence,
    refunded_on: NaiveDate,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<EventOutcome, E> {
    let Some(app) = (match &paid.application {
        Some(id) => tx.application(id).await?,
        None => None,
    }) else {
        return Ok(EventOutcome::Unmatched);
    };
    if refunded_total <= app.refunded {
        return Ok(EventOutcome::processed(false));
    }
    let back = refunded_total - app.refunded;
    let before = kept_after_refund(app.shares, app.amount, app.refunded);
    let after = kept_after_refund(app.shares, app.amount, refunded_total);
    let note = (after.odd > Pence::ZERO).then(|| {
        format!(
            "{} of this payment pays for no whole share and is not in the register: refund it to the member",
            after.odd
        )
    });
    // A held application refunded in full needs no decision any more.
    let status = if app.status == ApplicationStatus::Held && refunded_total >= app.amount {
        ApplicationStatus::Cancelled
    } else {
        app.status
    };
    tx.refund_application(&app.id, refunded_total, status, note.as_deref()).await?;
    tx.set_refunded(&paid.payment, refunded_total).await?;
    if app.status == ApplicationStatus::Allotted
        && let Some(person) = app.person_id
        && let Some(member) = tx.member_of(person).await?
    {
        let shares_back = before.shares - after.shares;
        let amount_back = before.amount - after.amount;
        let left = member.shares - shares_back;
        let line = AllotmentLine {
            member_number: member.member_number,
            application: app.id.clone(),
            source_id: format!("{}:refunded:{}", paid.payment, refunded_total.0),
            shares: -shares_back,
            amount: -amount_back,
            campaign_id: paid.campaign_id,
            allotted_on: refunded_on,
        };
        tx.insert_allotment(&line, now).await?;
        let ceased_on = (left <= 0).then_some(refunded_on);
        tx.change_holding(member.member_number, -shares_back, -amount_back, None, ceased_on).await?;
        if let Some(campaign_id) = paid.campaign_id {
            let movement = Movement {
                campaign_id,
                amount: -back,
                gifts: 0,
                source: "shares",
                source_id: line.source_id.clone(),
                occurred_at: at,
            };
            book(tx, &movement, now).await?;
        }
    }
    let notice = Notice::Refund { amount: back, refunded_on, purpose: "your payment for shares".to_owned() };
    tx.enqueue(&app.email, &notice, &paid.payment, now).await?;
    Ok(EventOutcome::processed(true))
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeLedger;
    use super::*;
    use crate::domain::{PostalAddress, SupporterStatus};

    fn at() -> DateTime<Utc> {
        "2026-11-17T12:00:00Z".parse().expect("instant")
    }

    fn day() -> NaiveDate {
        "2026-11-17".parse().expect("date")
    }

    fn ledger() -> FakeLedger {
        FakeLedger { fund: Some(CampaignRef { id: 1, title: "Fighting fund".into() }), ..FakeLedger::default() }
    }

    fn event(id: &str) -> ReceivedEvent {
        ReceivedEvent { id: id.into(), kind: "test".into(), created: at(), payload: "{}".into() }
    }

    async fn deliver(tx: &mut FakeLedger, id: &str, meaning: PaymentEvent) -> EventOutcome {
        let Ok(outcome) = apply_event(tx, &event(id), &meaning, false, at()).await;
        outcome
    }

    fn gift(payment: &str, pence: i64) -> PaymentEvent {
        PaymentEvent::GiftPaid {
            payment: payment.into(),
            session: format!("cs_{payment}"),
            amount: Pence(pence),
            donation: None,
            counts_on: day(),
            email: Some("reader@example.org".into()),
            customer: None,
        }
    }

    fn refund(payment: &str, total: i64) -> PaymentEvent {
        PaymentEvent::Refunded { payment: payment.into(), refunded_total: Pence(total), refunded_on: day() }
    }

    fn raised(tx: &FakeLedger) -> i64 {
        tx.totals.get(&1).map_or(0, |t| t.0.0)
    }

    /// The outside review's input: a gift paid through a Payment Link (no donation of ours)
    /// made no person, so the retention job never reached its giver's email.
    #[tokio::test]
    async fn a_gift_from_outside_our_form_makes_its_person() {
        let mut tx = ledger();
        deliver(&mut tx, "g", gift("pi_1", 2500)).await;
        assert_eq!(tx.people.keys().collect::<Vec<_>>(), ["reader@example.org"]);
        deliver(&mut tx, "g2", gift("pi_2", 500)).await;
        assert_eq!(tx.people.len(), 1, "one person, however many gifts");
    }

    #[tokio::test]
    async fn a_gift_counts_once_with_a_receipt_number_of_its_own() {
        let mut tx = ledger();
        assert_eq!(
            deliver(&mut tx, "e1", gift("pi_1", 2500)).await,
            EventOutcome::Processed { money_moved: true, known: Some("pi_1".into()) }
        );
        assert_eq!(deliver(&mut tx, "e1", gift("pi_1", 2500)).await, EventOutcome::Duplicate);
        assert_eq!(deliver(&mut tx, "e1b", gift("pi_1", 2500)).await, EventOutcome::processed(false));
        deliver(&mut tx, "e2", gift("pi_2", 1000)).await;
        assert_eq!(raised(&tx), 3500);
        let numbers: Vec<String> =
            tx.outbox.iter().filter_map(|(_, n)| n.receipt_number().map(str::to_owned)).collect();
        assert_eq!(numbers, ["R-2026-000001", "R-2026-000002"]);
    }

    #[tokio::test]
    async fn refunds_count_by_running_total_and_never_beyond_their_payment() {
        let mut tx = ledger();
        assert_eq!(
            deliver(&mut tx, "r1", refund("pi_1", 1000)).await,
            EventOutcome::Parked { waiting_for: "pi_1".into() }
        );
        deliver(&mut tx, "g1", gift("pi_1", 2500)).await;
        let Ok(again) = apply_event(&mut tx, &event("r1"), &refund("pi_1", 1000), true, at()).await;
        assert_eq!(again, EventOutcome::processed(true));
        assert_eq!(raised(&tx), 1500);
        assert_eq!(deliver(&mut tx, "r0", refund("pi_1", 500)).await, EventOutcome::processed(false), "an older total");
        assert_eq!(deliver(&mut tx, "r2", refund("pi_1", 1_000_000)).await, EventOutcome::Unmatched);
        assert_eq!(raised(&tx), 1500);
        let refunds = tx.outbox.iter().filter(|(_, n)| matches!(n, Notice::Refund { .. })).count();
        assert_eq!(refunds, 1);
    }

    /// A store takes receipt numbers ahead for the deliveries `may_take_receipt_number` names
    /// (`store/postgres.rs`, `lock_deliveries`): no gift, supporter's payment, refund or
    /// invoice payment it does not name takes one (a share allotment takes its own).
    #[tokio::test]
    async fn only_events_that_may_take_a_receipt_number_take_one() {
        let mut tx = ledger();
        let supporter = |email: Option<&str>| PaymentEvent::SupporterPaid {
            invoice: format!("in_{}", email.is_some()),
            subscription: "sub_1".into(),
            amount: Pence(1000),
            counts_on: day(),
            email: email.map(str::to_owned),
            customer: None,
        };
        let mut without_email = gift("pi_2", 700);
        if let PaymentEvent::GiftPaid { email, .. } = &mut without_email {
            *email = None;
        }
        let stream = [
            gift("pi_1", 2500),
            gift("pi_1", 2500),
            without_email,
            refund("pi_1", 500),
            supporter(Some("sam@example.org")),
            supporter(None),
            PaymentEvent::InvoicePaid { invoice: "in_true".into(), payment_intent: "pi_s".into(), amount: Pence(1000) },
            PaymentEvent::Ignored,
        ];
        for (n, meaning) in stream.into_iter().enumerate() {
            let before = tx.receipts;
            deliver(&mut tx, &format!("evt_{n}"), meaning.clone()).await;
            if tx.receipts > before {
                assert!(crate::ledger::may_take_receipt_number(&meaning), "{meaning:?} took a receipt number");
            }
        }
        assert_eq!(tx.receipts, 2, "the first gift and the supporter's payment with an address");
    }

    #[tokio::test]
    async fn a_supporters_refund_waits_for_the_invoice_payment_that_names_its_payment_intent() {
        let mut tx = ledger();
        let invoice = PaymentEvent::SupporterPaid {
            invoice: "in_1".into(),
            subscription: "sub_1".into(),
            amount: Pence(1000),
            counts_on: day(),
            email: Some("sam@example.org".into()),
            customer: None,
        };
        let paid_by =
            PaymentEvent::InvoicePaid { invoice: "in_1".into(), payment_intent: "pi_s".into(), amount: Pence(1000) };
        assert_eq!(deliver(&mut tx, "ip", paid_by.clone()).await, EventOutcome::Parked { waiting_for: "in_1".into() });
        assert_eq!(
            deliver(&mut tx, "r", refund("pi_s", 400)).await,
            EventOutcome::Parked { waiting_for: "pi_s".into() }
        );
        assert_eq!(
            deliver(&mut tx, "inv", invoice).await,
            EventOutcome::Processed { money_moved: true, known: Some("in_1".into()) }
        );
        let Ok(woken) = apply_event(&mut tx, &event("ip"), &paid_by, true, at()).await;
        assert_eq!(woken, EventOutcome::Processed { money_moved: false, known: Some("pi_s".into()) });
        let Ok(refunded) = apply_event(&mut tx, &event("r"), &refund("pi_s", 400), true, at()).await;
        assert_eq!(refunded, EventOutcome::processed(true));
        assert_eq!(raised(&tx), 600);
        assert_eq!(tx.supporters["sub_1"].status, SupporterStatus::Active);
    }

    #[tokio::test]
    async fn a_supporter_without_our_donation_is_the_person_their_invoice_names() {
        let mut tx = ledger();
        let changed = PaymentEvent::SubscriptionChanged(crate::domain::SubscriptionChange {
            subscription: "sub_1".into(),
            customer: Some("cus_1".into()),
            started_at: at(),
            status: SupporterStatus::Active,
            terms: crate::domain::SubscriptionTerms { amount: Pence(1000), ..Default::default() },
            ending: None,
        });
        deliver(&mut tx, "updated", changed).await;
        assert_eq!(tx.supporters["sub_1"].person, None, "no money yet: nobody is made");
        let invoice = PaymentEvent::SupporterPaid {
            invoice: "in_1".into(),
            subscription: "sub_1".into(),
            amount: Pence(1000),
            counts_on: day(),
            email: Some("Sam@Example.org".into()),
            customer: Some("cus_1".into()),
        };
        deliver(&mut tx, "paid", invoice).await;
        let sam = tx.people.get("sam@example.org").map(|(id, _)| *id);
        assert!(sam.is_some(), "made by the money, by the invoice's customer_email");
        assert_eq!(tx.supporters["sub_1"].person, sam);
    }

    #[tokio::test]
    async fn a_paid_forms_consent_joins_the_persons_history() {
        let mut tx = ledger();
        for (id, consent) in [("d1", true), ("d2", false)] {
            tx.donations.insert(
                id.into(),
                DonationRecord {
                    status: DonationStatus::Pending,
                    email: Some("ann@example.org".into()),
                    name: None,
                    marketing_consent: consent,
                },
            );
            let mut paid = gift(&format!("pi_{id}"), 500);
            if let PaymentEvent::GiftPaid { donation, .. } = &mut paid {
                *donation = Some(id.into());
            }
            deliver(&mut tx, id, paid).await;
        }
        let history: Vec<(bool, &str)> = tx.consent.iter().map(|(_, c, source, _)| (*c, source.as_str())).collect();
        assert_eq!(history, [(true, DONATION_FORM), (false, DONATION_FORM)], "kept in the order paid");
    }

    #[tokio::test]
    async fn a_won_dispute_nets_out_in_any_order_and_a_bigger_one_is_for_staff() {
        let mut tx = ledger();
        let dispute = |stage, pence| PaymentEvent::Disputed {
            payment: "pi_1".into(),
            dispute: "dp_1".into(),
            amount: Pence(pence),
            stage,
        };
        deliver(&mut tx, "g", gift("pi_1", 2500)).await;
        deliver(&mut tx, "won", dispute(DisputeStage::Won, 2500)).await;
        deliver(&mut tx, "opened", dispute(DisputeStage::Opened, 2500)).await;
        assert_eq!(raised(&tx), 2500);
        assert_eq!(deliver(&mut tx, "big", dispute(DisputeStage::Opened, 2501)).await, EventOutcome::Unmatched);
    }

    /// The outside review's input: a £25 gift refunded in full and then disputed took the fund
    /// to −£25 (£15 refunded and £25 disputed to −£15). Refunds and disputes together never
    /// take back more than the payment brought, and the figures are the same in any order.
    #[tokio::test]
    async fn refunds_and_disputes_together_never_take_back_more_than_the_payment() {
        let dispute = |stage, pence| PaymentEvent::Disputed {
            payment: "pi_1".into(),
            dispute: "dp_1".into(),
            amount: Pence(pence),
            stage,
        };
        let cases = [
            (vec![("r", refund("pi_1", 2500)), ("d", dispute(DisputeStage::Opened, 2500))], 0),
            (vec![("d", dispute(DisputeStage::Opened, 2500)), ("r", refund("pi_1", 2500))], 0),
            (vec![("r", refund("pi_1", 1500)), ("d", dispute(DisputeStage::Lost, 2500))], 0),
            (vec![("r", refund("pi_1", 1500)), ("d", dispute(DisputeStage::Won, 2500))], 1000),
            (
                vec![
                    ("d", dispute(DisputeStage::Opened, 2500)),
                    ("r", refund("pi_1", 1500)),
                    ("w", dispute(DisputeStage::Won, 2500)),
                ],
                1000,
            ),
            (
                vec![
                    ("w", dispute(DisputeStage::Won, 2500)),
                    ("r", refund("pi_1", 2500)),
                    ("d", dispute(DisputeStage::Opened, 2500)),
                ],
                0,
            ),
        ];
        for (events, raised_after) in cases {
            let mut tx = ledger();
            deliver(&mut tx, "g", gift("pi_1", 2500)).await;
            for (id, event) in &events {
                deliver(&mut tx, id, event.clone()).await;
            }
            let order: Vec<&str> = events.iter().map(|(id, _)| *id).collect();
            assert_eq!(raised(&tx), raised_after, "{order:?}");
        }
    }

    #[tokio::test]
    async fn shares_partly_refunded_keep_only_the_whole_shares_paid_for() {
        let mut tx = ledger();
        tx.applications.insert(
            "shr_1".into(),
            ApplicationRecord {
                id: "shr_1".into(),
                person_id: None,
                name: "Maria Lopez".into(),
                address: PostalAddress {
                    line1: "1 Mill Lane".into(),
                    line2: None,
                    town: "Leeds".into(),
                    postcode: "LS1 4AP".into(),
                },
                email: "maria@example.org".into(),
                amount: Pence(1000),
                shares: 10,
                cap: Pence(2_000_000),
                status: ApplicationStatus::Pending,
                payment: None,
                refunded: Pence::ZERO,
            },
        );
        let paid = PaymentEvent::SharesPaid {
            payment: "pi_sh".into(),
            application: "shr_1".into(),
            amount: Pence(1000),
            counts_on: day(),
        };
        deliver(&mut tx, "s", paid).await;
        assert_eq!((tx.members[&1].shares, tx.members[&1].amount_paid), (10, Pence(1000)));
        assert_eq!(deliver(&mut tx, "r", refund("pi_sh", 550)).await, EventOutcome::processed(true));
        assert_eq!(
            (tx.members[&1].shares, tx.members[&1].amount_paid),
            (4, Pence(400)),
            "4 shares, £4.00 paid; 50p for staff"
        );
        assert_eq!(raised(&tx), 0, "share money never counts in the fund");
    }
}
