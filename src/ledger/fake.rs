//! The primitives over plain maps, so that the rules can be tested without a database.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{
    AllotmentLine, ApplicationRecord, ApplicationStatus, CampaignRef, DonationRecord, DonationStatus, InvoiceRecord,
    LedgerTx, MemberHolding, Movement, PaymentRecord, SupporterRecord,
};
use crate::domain::{Notice, Pence, ReceivedEvent, SupporterNote};

/// One database's worth of ledger state; never fails.
#[derive(Default)]
pub struct FakeLedger {
    /// Event id → (status, waiting for).
    pub events: BTreeMap<String, (String, Option<String>)>,
    pub fund: Option<CampaignRef>,
    pub share_issue: Option<CampaignRef>,
    pub payments: BTreeMap<String, PaymentRecord>,
    pub references: HashMap<String, String>,
    pub ledger: Vec<Movement>,
    /// Campaign id → (raised, gifts).
    pub totals: BTreeMap<i64, (Pence, i64)>,
    pub receipts: i64,
    pub outbox: Vec<(String, Notice)>,
    pub donations: HashMap<String, DonationRecord>,
    /// Email key → (person id, name).
    pub people: BTreeMap<String, (i64, Option<String>)>,
    /// (person, consent, source, at) of each change of consent, in the order kept.
    pub consent: Vec<(i64, bool, String, DateTime<Utc>)>,
    pub supporters: BTreeMap<String, SupporterRecord>,
    pub invoices: BTreeMap<String, InvoiceRecord>,
    /// (subscription, change, at) of each line of supporters' history.
    pub supporter_changes: std::collections::BTreeSet<(String, SupporterNote, DateTime<Utc>)>,
    /// The keys of the emails queued once.
    pub outbox_keys: std::collections::BTreeSet<String>,
    pub applications: HashMap<String, ApplicationRecord>,
    /// Person id → holding.
    pub members: BTreeMap<i64, MemberHolding>,
    pub allotments: Vec<AllotmentLine>,
    /// (member number, application) of each change proposed.
    pub changes: Vec<(i64, String)>,
}

#[async_trait]
impl LedgerTx for FakeLedger {
    type Error = std::convert::Infallible;

    async fn insert_event(&mut self, event: &ReceivedEvent, _now: DateTime<Utc>) -> Result<bool, Self::Error> {
        if self.events.contains_key(&event.id) {
            return Ok(false);
        }
        self.events.insert(event.id.clone(), ("processed".into(), None));
        Ok(true)
    }

    async fn lock_kept_event(&mut self, id: &str) -> Result<bool, Self::Error> {
        Ok(self
            .events
            .get(id)
            .is_some_and(|(status, _)| ["parked", "unmatched", "unparsed"].contains(&status.as_str())))
    }

    async fn set_event_status(
        &mut self,
        id: &str,
        status: &str,
        waiting_for: Option<&str>,
        _note: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        self.events.insert(id.to_owned(), (status.to_owned(), waiting_for.map(str::to_owned)));
        Ok(())
    }

    async fn campaign_for_day(&mut self, _day: NaiveDate) -> Result<Option<CampaignRef>, Self::Error> {
        Ok(self.fund.clone())
    }

    async fn share_issue_for_day(&mut self, _day: NaiveDate) -> Result<Option<CampaignRef>, Self::Error> {
        Ok(self.share_issue.clone())
    }

    async fn campaign_title(&mut self, campaign_id: i64) -> Result<String, Self::Error> {
        let all = [&self.fund, &self.share_issue];
        Ok(all.into_iter().flatten().find(|c| c.id == campaign_id).map(|c| c.title.clone()).unwrap_or_default())
    }

    async fn find_payment(&mut self, reference: &str) -> Result<Option<PaymentRecord>, Self::Error> {
        Ok(self.references.get(reference).and_then(|key| self.payments.get(key)).cloned())
    }

    async fn insert_payment(&mut self, payment: &PaymentRecord) -> Result<bool, Self::Error> {
        if self.payments.contains_key(&payment.payment) {
            return Ok(false);
        }
        self.payments.insert(payment.payment.clone(), payment.clone());
        Ok(true)
    }

    async fn add_reference(&mut self, reference: &str, payment: &str) -> Result<(), Self::Error> {
        self.references.entry(reference.to_owned()).or_insert_with(|| payment.to_owned());
        Ok(())
    }

    async fn set_refunded(&mut self, payment: &str, refunded_total: Pence) -> Result<(), Self::Error> {
        if let Some(p) = self.payments.get_mut(payment) {
            p.refunded = refunded_total;
        }
        Ok(())
    }

    async fn insert_movement(&mut self, movement: &Movement, _now: DateTime<Utc>) -> Result<bool, Self::Error> {
        let booked = |m: &Movement| m.source == movement.source && m.source_id == movement.source_id;
        if self.ledger.iter().any(booked) {
            return Ok(false);
        }
        self.ledger.push(movement.clone());
        Ok(true)
    }

    async fn movements_after(&mut self, payment: &str) -> Result<Vec<(String, Pence)>, Self::Error> {
        let prefix = format!("{payment}:");
        Ok(self
            .ledger
            .iter()
            .filter(|m| m.source == "stripe" && m.source_id.starts_with(&prefix))
            .map(|m| (m.source_id.clone(), m.amount))
            .collect())
    }

    async fn add_to_totals(&mut self, movement: &Movement, _now: DateTime<Utc>) -> Result<(), Self::Error> {
        let totals = self.totals.entry(movement.campaign_id).or_default();
        totals.0 = totals.0 + movement.amount;
        totals.1 += movement.gifts;
        Ok(())
    }

    async fn next_receipt_number(&mut self) -> Result<i64, Self::Error> {
        self.receipts += 1;
        Ok(self.receipts)
    }

    async fn enqueue(
        &mut self,
        email: &str,
        notice: &Notice,
        _reference: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        self.outbox.push((email.to_owned(), notice.clone()));
        Ok(())
    }

    async fn donation(&mut self, id: &str) -> Result<Option<DonationRecord>, Self::Error> {
        Ok(self.donations.get(id).cloned())
    }

    async fn set_donation_status(
        &mut self,
        id: &str,
        status: DonationStatus,
        _paid_at: Option<DateTime<Utc>>,
        _person: Option<i64>,
    ) -> Result<(), Self::Error> {
        if let Some(d) = self.donations.get_mut(id) {
            d.status = status;
        }
        Ok(())
    }

    async fn make_person(
        &mut self,
        email_key: &str,
        _email: &str,
        name: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<i64, Self::Error> {
        let next = self.people.len() as i64 + 1;
        let person = self.people.entry(email_key.to_owned()).or_insert((next, None));
        if person.1.is_none() {
            person.1 = name.map(str::to_owned);
        }
        Ok(person.0)
    }

    async fn supporter(&mut self, subscription: &str) -> Result<Option<SupporterRecord>, Self::Error> {
        Ok(self.supporters.get(subscription).cloned())
    }

    async fn note_consent(
        &mut self,
        person: i64,
        consent: bool,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        self.consent.push((person, consent, source.to_owned(), at));
        Ok(())
    }

    async fn save_supporter(&mut self, supporter: &SupporterRecord) -> Result<(), Self::Error> {
        self.supporters.insert(supporter.subscription.clone(), supporter.clone());
        Ok(())
    }

    async fn supporter_invoice(&mut self, invoice: &str) -> Result<Option<InvoiceRecord>, Self::Error> {
        Ok(self.invoices.get(invoice).cloned())
    }

    async fn save_supporter_invoice(&mut self, invoice: &InvoiceRecord) -> Result<(), Self::Error> {
        self.invoices.insert(invoice.invoice.clone(), invoice.clone());
        Ok(())
    }

    async fn note_supporter_change(
        &mut self,
        subscription: &str,
        change: &SupporterNote,
        at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        self.supporter_changes.insert((subscription.to_owned(), change.clone(), at));
        Ok(())
    }

    async fn customer_email(&mut self, customer: &str) -> Result<Option<String>, Self::Error> {
        let newest =
            self.payments.values().filter(|p| p.customer.as_deref() == Some(customer)).max_by_key(|p| p.paid_at);
        Ok(newest.and_then(|p| p.email.clone()))
    }

    async fn enqueue_once(
        &mut self,
        email: &str,
        notice: &Notice,
        key: &str,
        _reference: &str,
        _now: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        if !self.outbox_keys.insert(key.to_owned()) {
            return Ok(false);
        }
        self.outbox.push((email.to_owned(), notice.clone()));
        Ok(true)
    }

    async fn application(&mut self, id: &str) -> Result<Option<ApplicationRecord>, Self::Error> {
        Ok(self.applications.get(id).cloned())
    }

    async fn settle_application(
        &mut self,
        id: &str,
        status: ApplicationStatus,
        payment: &str,
        _paid_at: DateTime<Utc>,
        _note: Option<&str>,
        person: i64,
    ) -> Result<(), Self::Error> {
        if let Some(a) = self.applications.get_mut(id) {
            a.status = status;
            a.payment = Some(payment.to_owned());
            a.person_id = Some(person);
        }
        Ok(())
    }

    async fn refund_application(
        &mut self,
        id: &str,
        refunded_total: Pence,
        status: ApplicationStatus,
        _note: Option<&str>,
    ) -> Result<(), Self::Error> {
        if let Some(a) = self.applications.get_mut(id) {
            a.refunded = refunded_total;
            a.status = status;
        }
        Ok(())
    }

    async fn lock_person(&mut self, _person_id: i64) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn member_of(&mut self, person_id: i64) -> Result<Option<MemberHolding>, Self::Error> {
        Ok(self.members.get(&person_id).cloned())
    }

    async fn next_member_number(&mut self) -> Result<i64, Self::Error> {
        Ok(self.members.len() as i64 + 1)
    }

    async fn insert_member(
        &mut self,
        number: i64,
        person: i64,
        application: &str,
        _entered_on: NaiveDate,
    ) -> Result<(), Self::Error> {
        if let Some(a) = self.applications.get(application) {
            let empty = MemberHolding {
                member_number: number,
                name: a.name.clone(),
                address: a.address.clone(),
                shares: 0,
                amount_paid: Pence::ZERO,
            };
            self.members.insert(person, empty);
        }
        Ok(())
    }

    async fn change_holding(
        &mut self,
        number: i64,
        shares: i64,
        amount: Pence,
        _email: Option<&str>,
        _ceased_on: Option<NaiveDate>,
    ) -> Result<(), Self::Error> {
        if let Some(m) = self.members.values_mut().find(|m| m.member_number == number) {
            m.shares += shares;
            m.amount_paid = m.amount_paid + amount;
        }
        Ok(())
    }

    async fn insert_allotment(&mut self, line: &AllotmentLine, _now: DateTime<Utc>) -> Result<(), Self::Error> {
        self.allotments.push(line.clone());
        Ok(())
    }

    async fn propose_member_change(
        &mut self,
        number: i64,
        application: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        self.changes.push((number, application.to_owned()));
        Ok(())
    }
}
