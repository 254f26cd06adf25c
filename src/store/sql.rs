//! The SQL both engines share, written once and instantiated for each by `shared_store!`.
//!
//! Both engines accept the same statements here (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`), so the only differences passed in are how a write transaction
//! begins and how a row is locked for the rest of it.

use sqlx::{Database, Pool};

pub struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
    /// Where the engine books paid gifts in batches (PostgreSQL), its queue; `None` on SQLite,
    /// which has no `INSERT` inside `WITH` and books each gift in its own transaction.
    pub(super) gifts: Option<super::gift_batch::GiftQueue>,
}

/// A campaign with its totals: the sum of at most 16 striped rows, whatever the size of the ledger.
macro_rules! campaign_columns {
    () => {
        "slug, title, kind, target_pence, starts_on, ends_on, monthly_series,
         CAST(COALESCE((SELECT SUM(t.raised_pence) FROM campaign_totals t WHERE t.campaign_id = campaigns.id), 0) AS BIGINT)
           AS raised_pence,
         CAST(COALESCE((SELECT SUM(t.gifts) FROM campaign_totals t WHERE t.campaign_id = campaigns.id), 0) AS BIGINT)
           AS gifts,
         COALESCE((SELECT MAX(t.updated_at) FROM campaign_totals t WHERE t.campaign_id = campaigns.id), campaigns.updated_at)
           AS updated_at"
    };
}

/// Where a payment event moves a reader's donation.
#[derive(Clone, Copy)]
pub(super) enum DonationStep {
    Paid,
    Processing,
    Failed,
}

/// How many rows each campaign's totals are striped over.
pub(super) const TOTAL_SHARDS: i64 = 16;

/// The one rule for which campaign a day belongs to: the donations campaign whose dates
/// contain it, else the latest that had started by then, else the next to start.
macro_rules! campaign_for_day_order {
    () => {
        campaign_for_day_order!("$1")
    };
    ($day:literal) => {
        concat!(
            " ORDER BY CASE WHEN starts_on <= ",
            $day,
            " AND ends_on >= ",
            $day,
            " THEN 0 WHEN starts_on <= ",
            $day,
            " THEN 1 ELSE 2 END, CASE WHEN starts_on <= ",
            $day,
            " THEN starts_on END DESC, starts_on, id DESC LIMIT 1"
        )
    };
}

macro_rules! shared_store {
    (
        $engine:ty,
        begin_write: $begin:literal,
        for_update: $for_update:literal,
        skip_locked: $skip_locked:literal,
        next_receipt: $next_receipt:literal
    ) => {
        use chrono::{DateTime, NaiveDate, Utc};
        use sqlx::Transaction;

        use $crate::domain::{
            Campaign, DisputeStage, EmailAddress, EventOutcome, NewCampaign, NewDonation, NewShareApplication, Notice,
            OfflineGift, PaymentEvent, Pence, ReceivedEvent, RegisterEntry, Role,
        };
        use $crate::domain::notice::receipt_number;
        use $crate::store::sql::{DonationStep, SqlStore, TOTAL_SHARDS};
        use $crate::store::{
            Actor, Allotment, AuditEntry, CampaignChange, CampaignRow, Donation, EmailRow, EventRow, GiftFilter, GiftRow,
            HeldApplication, StaffRow,
            LedgerEntry, LedgerRow, MemberRow, NewPayment, OutboxCounts, OutboxEmail, PersonRow, PublicGift,
            ShareApplication, StaffMember, Store, StoreError, Supporter, SupporterRow, SupporterTotals, Tried,
        };
        use $crate::jobs::reconcile::CountedPayment;

        impl SqlStore<$engine> {
            /// Alone on the pool (roll-over, seeding) or inside the transaction that audits it.
            async fn insert_campaign_if_new<'e>(
                db: impl sqlx::Executor<'e, Database = $engine>,
                c: &NewCampaign,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let inserted: Option<String> = sqlx::query_scalar(
                    "INSERT INTO campaigns (slug, title, kind, target_pence, starts_on, ends_on, monthly_series, created_at, updated_at)
                     VALUES ($1, $2, $8, $3, $4, $5, $6, $7, $7)
                     ON CONFLICT DO NOTHING RETURNING slug",
                )
                .bind(&c.slug)
                .bind(&c.title)
                .bind(c.target.map(|t| t.0))
                .bind(c.starts_on)
                .bind(c.ends_on)
                .bind(&c.monthly_series)
                .bind(now)
                .bind(c.kind.as_str())
                .fetch_optional(db)
                .await?;
                Ok(inserted.is_some())
            }

            async fn campaign_id(tx: &mut Transaction<'_, $engine>, slug: &str) -> Result<i64, StoreError> {
                sqlx::query_scalar("SELECT id FROM campaigns WHERE slug = $1")
                    .bind(slug)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
            }

            /// Who did what, in the transaction that does it.
            async fn audit_in(
                tx: &mut Transaction<'_, $engine>,
                actor: &Actor,
                action: &str,
                detail: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO audit_log (staff_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(actor.staff_id)
                    .bind(&actor.name)
                    .bind(action)
                    .bind(detail)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// The ledger row and the campaign's running totals, in the caller's transaction.
            async fn book_in(
                tx: &mut Transaction<'_, $engine>,
                campaign_id: i64,
                entry: &LedgerEntry,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (source, source_id) DO NOTHING RETURNING id",
                )
                .bind(campaign_id)
                .bind(entry.amount.0)
                .bind(entry.gifts)
                .bind(entry.source)
                .bind(&entry.source_id)
                .bind(entry.occurred_at)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
                let Some(id) = inserted else {
                    return Ok(false);
                };
                sqlx::query(
                    "INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (campaign_id, shard) DO UPDATE SET
                       raised_pence = campaign_totals.raised_pence + excluded.raised_pence,
                       gifts = campaign_totals.gifts + excluded.gifts,
                       updated_at = excluded.updated_at",
                )
                .bind(campaign_id)
                .bind(id.rem_euclid(TOTAL_SHARDS))
                .bind(entry.amount.0)
                .bind(entry.gifts)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(true)
            }

            async fn campaign_for_day(
                tx: &mut Transaction<'_, $engine>,
                day: NaiveDate,
            ) -> Result<Option<(i64, String)>, StoreError> {
                Ok(sqlx::query_as(concat!("SELECT id, title FROM campaigns WHERE kind = 'donations'", campaign_for_day_order!()))
                    .bind(day)
                    .fetch_optional(&mut **tx)
                    .await?)
            }

            /// A payment that arrived: remembered with its campaign, booked once, and receipted once.
            async fn count_payment(
                tx: &mut Transaction<'_, $engine>,
                p: &NewPayment<'_>,
                now: DateTime<Utc>,
            ) -> Result<Option<bool>, StoreError> {
                let Some((campaign_id, title)) = Self::campaign_for_day(tx, p.counts_on).await? else {
                    return Ok(None);
                };
                sqlx::query(
                    "INSERT INTO payments (payment, campaign_id, amount_pence, donation_id, email, customer, paid_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (payment) DO NOTHING",
                )
                .bind(p.payment)
                .bind(campaign_id)
                .bind(p.amount.0)
                .bind(p.donation)
                .bind(p.email)
                .bind(p.customer)
                .bind(p.paid_at)
                .execute(&mut **tx)
                .await?;
                let entry = LedgerEntry {
                    amount: p.amount,
                    gifts: 1,
                    source: "stripe",
                    source_id: p.payment.to_owned(),
                    occurred_at: p.paid_at,
                };
                let booked = Self::book_in(tx, campaign_id, &entry, now).await?;
                if booked && let Some(email) = p.email {
                    let purpose = format!("{} to the {title}", p.purpose);
                    Self::receipt_in(tx, email, p.payment, p.amount, p.counts_on, purpose, now).await?;
                }
                Ok(Some(booked))
            }

            /// Writes a receipt, with the next receipt number, in the payment's transaction.
            async fn receipt_in(
                tx: &mut Transaction<'_, $engine>,
                email: &str,
                reference: &str,
                amount: Pence,
                paid_on: NaiveDate,
                purpose: String,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let number = Self::next_receipt_number(tx, paid_on).await?;
                let notice = Notice::Receipt { number, amount, paid_on, purpose };
                Self::enqueue_in(tx, email, &notice, reference, now).await
            }

            /// `R-2026-000123`: the next number, unique across the service, for a payment on `paid_on`.
            async fn next_receipt_number(tx: &mut Transaction<'_, $engine>, paid_on: NaiveDate) -> Result<String, StoreError> {
                use chrono::Datelike;
                let sequence: i64 = sqlx::query_scalar($next_receipt).bind("receipt_numbers").fetch_one(&mut **tx).await?;
                Ok(receipt_number(paid_on.year(), sequence))
            }

            /// Queues an email about the payment or gift `reference`.
            async fn enqueue_in(
                tx: &mut Transaction<'_, $engine>,
                email: &str,
                notice: &Notice,
                reference: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let payload = serde_json::to_string(notice).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
                sqlx::query(
                    "INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference)
                     VALUES ($1, $2, $3, 'pending', $4, $5)",
                )
                .bind(email)
                .bind(uuid::Uuid::new_v4().simple().to_string())
                .bind(payload)
                .bind(now)
                .bind(reference)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// The one person behind an address, however it is capitalised: made on first sight.
            async fn person_in(
                tx: &mut Transaction<'_, $engine>,
                email: &EmailAddress,
                name: Option<&str>,
                now: DateTime<Utc>,
            ) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO people (email_key, email, name, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (email_key) DO UPDATE SET email = excluded.email, name = COALESCE(excluded.name, people.name)
                     RETURNING id",
                )
                .bind(email.key())
                .bind(email.as_str())
                .bind(name)
                .bind(now)
                .fetch_one(&mut **tx)
                .await?)
            }

            /// Allots paid shares: a new member gets the next member number, an existing one adds
            /// to their holding. Breaking the cap holds the application for staff instead.
            async fn allot_in(
                tx: &mut Transaction<'_, $engine>,
                paid: (&str, &str, Pence, NaiveDate),
                at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<EventOutcome, StoreError> {
                let (payment, application, amount, allotted_on) = paid;
                let app: Option<(i64, i64, i64, i64, String, Option<String>)> = sqlx::query_as(concat!(
                    "SELECT person_id, amount_pence, shares, cap_pence, email, payment FROM share_applications WHERE id = $1",
                    $for_update
                ))
                .bind(application)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((person_id, applied, shares, cap, email, paid_by)) = app else {
                    return Ok(EventOutcome::Unmatched);
                };
                if paid_by.is_some() {
                    return Ok(EventOutcome::processed(false));
                }
                // One allotment at a time per person: two first payments make one member, not two.
                sqlx::query(concat!("SELECT id FROM people WHERE id = $1", $for_update))
                    .bind(person_id)
                    .execute(&mut **tx)
                    .await?;
                let member: Option<(i64, i64, i64)> = sqlx::query_as(concat!(
                    "SELECT member_number, shares, amount_paid_pence FROM members WHERE person_id = $1",
                    $for_update
                ))
                .bind(person_id)
                .fetch_optional(&mut **tx)
                .await?;
                let (held_shares, held) = member.map_or((0, 0), |(_, s, a)| (s, a));
                let problem = if amount.0 != applied {
                    Some(format!("paid {} for shares applied for at {}", amount, Pence(applied)))
                } else if held + amount.0 > cap {
                    Some(format!("allotting {} would take the holding of {} past the cap of {}", amount, Pence(held), Pence(cap)))
                } else {
                    None
                };
                if let Some(note) = problem {
                    sqlx::query(
                        "UPDATE share_applications SET status = 'held', payment = $2, paid_at = $3, note = $4 WHERE id = $1",
                    )
                    .bind(application)
                    .bind(payment)
                    .bind(at)
                    .bind(note)
                    .execute(&mut **tx)
                    .await?;
                    return Ok(EventOutcome::processed(false));
                }
                let member_number = match member {
                    Some((number, _, _)) => number,
                    None => {
                        let number: i64 = sqlx::query_scalar(
                            "INSERT INTO counters (name, value) VALUES ('member_numbers', 1)
                             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                        )
                        .fetch_one(&mut **tx)
                        .await?;
                        sqlx::query(
                            "INSERT INTO members (member_number, person_id, name, address_line1, address_line2, town, postcode,
                                                  email, shares, amount_paid_pence, entered_on)
                             SELECT $1, person_id, name, address_line1, address_line2, town, postcode, email, 0, 0, $3
                             FROM share_applications WHERE id = $2",
                        )
                        .bind(number)
                        .bind(application)
                        .bind(allotted_on)
                        .execute(&mut **tx)
                        .await?;
                        number
                    }
                };
                // The register keeps the latest name and address the member gave.
                sqlx::query(
                    "UPDATE members SET shares = members.shares + $2, amount_paid_pence = members.amount_paid_pence + $3, ceased_on = NULL,
                       name = a.name, address_line1 = a.address_line1, address_line2 = a.address_line2, town = a.town,
                       postcode = a.postcode, email = a.email
                     FROM share_applications a WHERE members.member_number = $1 AND a.id = $4",
                )
                .bind(member_number)
                .bind(shares)
                .bind(amount.0)
                .bind(application)
                .execute(&mut **tx)
                .await?;
                let campaign: Option<(i64, String)> = sqlx::query_as(
                    "SELECT id, title FROM campaigns WHERE kind = 'shares' AND starts_on <= $1 AND (ends_on IS NULL OR ends_on >= $1)
                     ORDER BY starts_on DESC, id DESC LIMIT 1",
                )
                .bind(allotted_on)
                .fetch_optional(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO share_allotments (member_number, application_id, source_id, shares, amount_pence, campaign_id,
                                                   allotted_on, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(member_number)
                .bind(application)
                .bind(payment)
                .bind(shares)
                .bind(amount.0)
                .bind(campaign.as_ref().map(|c| c.0))
                .bind(allotted_on)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                if let Some((campaign_id, _)) = campaign {
                    let entry = LedgerEntry {
                        amount,
                        gifts: 1,
                        source: "shares",
                        source_id: payment.to_owned(),
                        occurred_at: at,
                    };
                    Self::book_in(tx, campaign_id, &entry, now).await?;
                }
                sqlx::query("UPDATE share_applications SET status = 'allotted', payment = $2, paid_at = $3 WHERE id = $1")
                    .bind(application)
                    .bind(payment)
                    .bind(at)
                    .execute(&mut **tx)
                    .await?;
                let notice = Notice::Membership {
                    number: Self::next_receipt_number(tx, allotted_on).await?,
                    member_number,
                    new_member: member.is_none(),
                    shares,
                    amount,
                    allotted_on,
                    holding_shares: held_shares + shares,
                    holding_amount: Pence(held) + amount,
                };
                Self::enqueue_in(tx, &email, &notice, payment, now).await?;
                Ok(EventOutcome::processed(true))
            }

            /// A refund of a share payment takes back the shares it paid for, in proportion; a
            /// member left with none has ceased. `None`: the payment was not for shares.
            async fn refund_shares_in(
                tx: &mut Transaction<'_, $engine>,
                payment: &str,
                refunded_total: Pence,
                refunded_on: NaiveDate,
                at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<Option<EventOutcome>, StoreError> {
                let app: Option<(String, i64, i64, i64, i64, String, String)> = sqlx::query_as(concat!(
                    "SELECT id, person_id, amount_pence, shares, refunded_pence, status, email
                     FROM share_applications WHERE payment = $1",
                    $for_update
                ))
                .bind(payment)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((application, person_id, paid, shares, already, status, email)) = app else {
                    return Ok(None);
                };
                if refunded_total.0 <= already {
                    return Ok(Some(EventOutcome::processed(false)));
                }
                let back = refunded_total.0.min(paid) - already;
                // A held application refunded in full needs no decision any more.
                sqlx::query(
                    "UPDATE share_applications SET refunded_pence = $2,
                       status = CASE WHEN status = 'held' AND $2 >= amount_pence THEN 'cancelled' ELSE status END
                     WHERE id = $1",
                )
                .bind(&application)
                .bind(refunded_total.0)
                .execute(&mut **tx)
                .await?;
                if status == "allotted" {
                    // Shares paid for by what is refunded so far, less those already taken back.
                    let shares_back = refunded_total.0.min(paid) * shares / paid - already.min(paid) * shares / paid;
                    let member: (i64, i64, i64) = sqlx::query_as(concat!(
                        "SELECT member_number, shares, amount_paid_pence FROM members WHERE person_id = $1",
                        $for_update
                    ))
                    .bind(person_id)
                    .fetch_one(&mut **tx)
                    .await?;
                    let (member_number, held_shares, _) = member;
                    let source_id = format!("{payment}:refunded:{}", refunded_total.0);
                    let campaign_id: Option<i64> =
                        sqlx::query_scalar("SELECT campaign_id FROM share_allotments WHERE source_id = $1")
                            .bind(payment)
                            .fetch_one(&mut **tx)
                            .await?;
                    sqlx::query(
                        "INSERT INTO share_allotments (member_number, application_id, source_id, shares, amount_pence,
                                                       campaign_id, allotted_on, recorded_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(member_number)
                    .bind(&application)
                    .bind(&source_id)
                    .bind(-shares_back)
                    .bind(-back)
                    .bind(campaign_id)
                    .bind(refunded_on)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query(
                        "UPDATE members SET shares = shares - $2, amount_paid_pence = amount_paid_pence - $3,
                           ceased_on = CASE WHEN $4 THEN $5 ELSE ceased_on END
                         WHERE member_number = $1",
                    )
                    .bind(member_number)
                    .bind(shares_back)
                    .bind(back)
                    .bind(held_shares == shares_back)
                    .bind(refunded_on)
                    .execute(&mut **tx)
                    .await?;
                    if let Some(campaign_id) = campaign_id {
                        let entry =
                            LedgerEntry { amount: Pence(-back), gifts: 0, source: "shares", source_id, occurred_at: at };
                        Self::book_in(tx, campaign_id, &entry, now).await?;
                    }
                }
                let notice =
                    Notice::Refund { amount: Pence(back), refunded_on, purpose: "your payment for shares".to_owned() };
                Self::enqueue_in(tx, &email, &notice, payment, now).await?;
                Ok(Some(EventOutcome::processed(true)))
            }

            /// Moves a donation on, never back: paid and failed are final.
            async fn mark_donation(
                tx: &mut Transaction<'_, $engine>,
                donation: Option<&str>,
                step: DonationStep,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let Some(donation) = donation else { return Ok(()) };
                let update = match step {
                    DonationStep::Paid => sqlx::query(
                        "UPDATE donations SET status = 'paid', paid_at = COALESCE(paid_at, $2)
                         WHERE id = $1 AND status IN ('pending', 'processing', 'cancelled')",
                    )
                    .bind(donation)
                    .bind(at),
                    DonationStep::Processing => sqlx::query(
                        "UPDATE donations SET status = 'processing' WHERE id = $1 AND status IN ('pending', 'cancelled')",
                    )
                    .bind(donation),
                    DonationStep::Failed => sqlx::query(
                        "UPDATE donations SET status = 'failed' WHERE id = $1 AND status IN ('pending', 'processing')",
                    )
                    .bind(donation),
                };
                update.execute(&mut **tx).await?;
                Ok(())
            }

            /// What one event means, applied inside the transaction that stores it.
            async fn apply_in(
                tx: &mut Transaction<'_, $engine>,
                event: &ReceivedEvent,
                meaning: &PaymentEvent,
                now: DateTime<Utc>,
            ) -> Result<EventOutcome, StoreError> {
                let at = event.created;
                let processed = EventOutcome::processed;
                match meaning {
                    PaymentEvent::GiftPaid { payment, amount, donation, counts_on, email, customer, .. } => {
                        let donation = donation.as_deref();
                        let new = NewPayment {
                            counts_on: *counts_on,
                            payment,
                            amount: *amount,
                            donation,
                            email: email.as_deref(),
                            customer: customer.as_deref(),
                            purpose: super::ONE_OFF_GIFT,
                            paid_at: at,
                        };
                        let Some(moved) = Self::count_payment(tx, &new, now).await? else {
                            return Ok(EventOutcome::Unmatched);
                        };
                        Self::mark_donation(tx, donation, DonationStep::Paid, at).await?;
                        Ok(processed(moved))
                    }
                    PaymentEvent::SharesPaid { payment, application, amount, counts_on } => {
                        Self::allot_in(tx, (payment, application, *amount, *counts_on), at, now).await
                    }
                    PaymentEvent::GiftPending { donation, .. } => {
                        Self::mark_donation(tx, donation.as_deref(), DonationStep::Processing, at).await?;
                        Ok(processed(false))
                    }
                    PaymentEvent::GiftFailed { donation, .. } => {
                        Self::mark_donation(tx, donation.as_deref(), DonationStep::Failed, at).await?;
                        Ok(processed(false))
                    }
                    PaymentEvent::SupporterStarted { subscription, customer, amount, donation } => {
                        sqlx::query(
                            "INSERT INTO supporters (subscription, donation_id, customer, amount_pence, status, started_at, status_at)
                             VALUES ($1, (SELECT id FROM donations WHERE id = $2), $3, $4, 'active', $5, $5)
                             ON CONFLICT (subscription) DO UPDATE SET
                               donation_id = COALESCE(supporters.donation_id, excluded.donation_id),
                               customer = COALESCE(supporters.customer, excluded.customer),
                               amount_pence = excluded.amount_pence,
                               started_at = excluded.started_at",
                        )
                        .bind(subscription)
                        .bind(donation)
                        .bind(customer)
                        .bind(amount.0)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                        Self::mark_donation(tx, donation.as_deref(), DonationStep::Paid, at).await?;
                        Ok(processed(false))
                    }
                    PaymentEvent::SupporterPaid { invoice, subscription, amount, counts_on, email, customer } => {
                        // The first invoice may come before the checkout that starts the supporter.
                        sqlx::query(
                            "INSERT INTO supporters (subscription, amount_pence, status, started_at, status_at)
                             VALUES ($1, $2, 'active', $3, $3) ON CONFLICT (subscription) DO NOTHING",
                        )
                        .bind(subscription)
                        .bind(amount.0)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                        let donation: Option<String> =
                            sqlx::query_scalar("SELECT donation_id FROM supporters WHERE subscription = $1")
                                .bind(subscription)
                                .fetch_optional(&mut **tx)
                                .await?
                                .flatten();
                        let new = NewPayment {
                            counts_on: *counts_on,
                            payment: invoice,
                            amount: *amount,
                            donation: donation.as_deref(),
                            email: email.as_deref(),
                            customer: customer.as_deref(),
                            purpose: "a monthly supporter's payment",
                            paid_at: at,
                        };
                        match Self::count_payment(tx, &new, now).await? {
                            Some(moved) => Ok(processed(moved)),
                            None => Ok(EventOutcome::Unmatched),
                        }
                    }
                    PaymentEvent::SupporterStatus { subscription, status } => {
                        // Cancelled is final, and an older event never overrides a newer one.
                        sqlx::query(
                            "INSERT INTO supporters (subscription, amount_pence, status, started_at, status_at)
                             VALUES ($1, 0, $2, $3, $3)
                             ON CONFLICT (subscription) DO UPDATE SET status = excluded.status, status_at = excluded.status_at
                             WHERE supporters.status <> 'cancelled' AND supporters.status_at <= excluded.status_at",
                        )
                        .bind(subscription)
                        .bind(status.as_str())
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                        Ok(processed(false))
                    }
                    PaymentEvent::Refunded { payment, refunded_total, refunded_on } => {
                        let known: Option<(i64, i64, Option<String>, String)> = sqlx::query_as(concat!(
                            "SELECT p.campaign_id, p.refunded_pence, p.email, c.title
                             FROM payments p JOIN campaigns c ON c.id = p.campaign_id WHERE p.payment = $1",
                            $for_update
                        ))
                        .bind(payment)
                        .fetch_optional(&mut **tx)
                        .await?;
                        let Some((campaign_id, already, email, title)) = known else {
                            let shares = Self::refund_shares_in(tx, payment, *refunded_total, *refunded_on, at, now).await?;
                            return Ok(shares.unwrap_or_else(|| EventOutcome::Parked { waiting_for: payment.clone() }));
                        };
                        // Stripe gives the running total: book only what is new, whatever the order.
                        if refunded_total.0 <= already {
                            return Ok(processed(false));
                        }
                        sqlx::query("UPDATE payments SET refunded_pence = $2 WHERE payment = $1")
                            .bind(payment)
                            .bind(refunded_total.0)
                            .execute(&mut **tx)
                            .await?;
                        let entry = LedgerEntry {
                            amount: Pence(already - refunded_total.0),
                            gifts: 0,
                            source: "stripe",
                            source_id: format!("{payment}:refunded:{}", refunded_total.0),
                            occurred_at: at,
                        };
                        let booked = Self::book_in(tx, campaign_id, &entry, now).await?;
                        if booked && let Some(email) = email {
                            let notice = Notice::Refund {
                                amount: Pence(refunded_total.0 - already),
                                refunded_on: *refunded_on,
                                purpose: format!("your gift to the {title}"),
                            };
                            Self::enqueue_in(tx, &email, &notice, payment, now).await?;
                        }
                        Ok(processed(booked))
                    }
                    PaymentEvent::Disputed { payment, dispute, amount, stage } => {
                        let campaign_id: Option<i64> = sqlx::query_scalar(concat!(
                            "SELECT campaign_id FROM payments WHERE payment = $1",
                            $for_update
                        ))
                        .bind(payment)
                        .fetch_optional(&mut **tx)
                        .await?;
                        let Some(campaign_id) = campaign_id else {
                            // A dispute of a share payment is for staff to settle with the member.
                            let for_shares: Option<String> =
                                sqlx::query_scalar("SELECT id FROM share_applications WHERE payment = $1")
                                    .bind(payment)
                                    .fetch_optional(&mut **tx)
                                    .await?;
                            return Ok(match for_shares {
                                Some(_) => EventOutcome::Unmatched,
                                None => EventOutcome::Parked { waiting_for: payment.clone() },
                            });
                        };
                        // Every stage implies the withdrawal, so a closing that comes first still nets out.
                        let withdrawn = LedgerEntry {
                            amount: -*amount,
                            gifts: 0,
                            source: "stripe",
                            // Under the payment's id, so that its page finds it: `{payment}:{dispute}:…`.
                            source_id: format!("{payment}:{dispute}:withdrawn"),
                            occurred_at: at,
                        };
                        let mut moved = Self::book_in(tx, campaign_id, &withdrawn, now).await?;
                        if *stage == DisputeStage::Won {
                            let reinstated = LedgerEntry {
                                amount: *amount,
                                source_id: format!("{payment}:{dispute}:reinstated"),
                                ..withdrawn
                            };
                            moved |= Self::book_in(tx, campaign_id, &reinstated, now).await?;
                        }
                        Ok(processed(moved))
                    }
                    PaymentEvent::Unmatched { .. } => Ok(EventOutcome::Unmatched),
                    PaymentEvent::Ignored => Ok(EventOutcome::Ignored),
                }
            }
        }

        #[async_trait::async_trait]
        impl Store for SqlStore<$engine> {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_campaign(&self, c: &NewCampaign, actor: &Actor, now: DateTime<Utc>) -> Result<Campaign, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                if !Self::insert_campaign_if_new(&mut *tx, c, now).await? {
                    return Err(StoreError::DuplicateSlug(c.slug.clone()));
                }
                let detail = format!(
                    "{} {:?}: {} to {}, target {}",
                    c.slug, c.title, c.starts_on, super::or_none(c.ends_on), super::or_none(c.target)
                );
                Self::audit_in(&mut tx, actor, "campaign.create", &detail, now).await?;
                tx.commit().await?;
                self.campaign(&c.slug).await?.ok_or_else(|| StoreError::UnknownCampaign(c.slug.clone()))
            }

            async fn change_campaign(
                &self,
                slug: &str,
                change: &CampaignChange,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<Campaign, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let before: Option<(Option<i64>, Option<NaiveDate>)> =
                    sqlx::query_as(concat!("SELECT target_pence, ends_on FROM campaigns WHERE slug = $1", $for_update))
                        .bind(slug)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((target, ends_on)) = before else {
                    return Err(StoreError::UnknownCampaign(slug.to_owned()));
                };
                sqlx::query("UPDATE campaigns SET target_pence = $2, ends_on = $3, updated_at = $4 WHERE slug = $1")
                    .bind(slug)
                    .bind(change.target.map(|t| t.0))
                    .bind(change.ends_on)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let detail = format!(
                    "{slug}: target {} → {}, ends {} → {}",
                    super::or_none(target.map(Pence)),
                    super::or_none(change.target),
                    super::or_none(ends_on),
                    super::or_none(change.ends_on)
                );
                Self::audit_in(&mut tx, actor, "campaign.change", &detail, now).await?;
                tx.commit().await?;
                self.campaign(slug).await?.ok_or_else(|| StoreError::UnknownCampaign(slug.to_owned()))
            }

            async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
                let rows = sqlx::query_as::<_, CampaignRow>(concat!(
                    "SELECT ",
                    campaign_columns!(),
                    " FROM campaigns ORDER BY starts_on DESC, id DESC"
                ))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Campaign::from).collect())
            }

            async fn campaign(&self, slug: &str) -> Result<Option<Campaign>, StoreError> {
                let row = sqlx::query_as::<_, CampaignRow>(concat!(
                    "SELECT ",
                    campaign_columns!(),
                    " FROM campaigns WHERE slug = $1"
                ))
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Campaign::from))
            }

            async fn current_campaign(&self, today: NaiveDate) -> Result<Option<Campaign>, StoreError> {
                let row = sqlx::query_as::<_, CampaignRow>(concat!(
                    "SELECT ",
                    campaign_columns!(),
                    " FROM campaigns WHERE kind = 'donations'",
                    campaign_for_day_order!()
                ))
                .bind(today)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Campaign::from))
            }

            async fn roll_over_monthly(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
                let latest: Vec<(String, String, i64, NaiveDate)> = sqlx::query_as(
                    "SELECT c.monthly_series, c.title, c.target_pence, c.ends_on FROM campaigns c
                     WHERE c.monthly_series IS NOT NULL AND c.target_pence IS NOT NULL AND c.ends_on IS NOT NULL
                       AND c.starts_on = (SELECT MAX(o.starts_on) FROM campaigns o WHERE o.monthly_series = c.monthly_series)",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut created = Vec::new();
                for (series, title, target, ends_on) in latest {
                    if ends_on >= today {
                        continue;
                    }
                    let next = NewCampaign::next_in_series(&series, &title, Pence(target), today);
                    if Self::insert_campaign_if_new(&self.pool, &next, now).await? {
                        created.push(next.slug);
                    }
                }
                Ok(created)
            }

            async fn seed_demo_campaign(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaigns").fetch_one(&self.pool).await?;
                if existing > 0 {
                    return Ok(false);
                }
                let demo = NewCampaign::next_in_series("fighting-fund", "Fighting fund", Pence::from_pounds(18_000), today);
                Self::insert_campaign_if_new(&self.pool, &demo, now).await
            }

            async fn record_offline_gift(
                &self,
                gift: &OfflineGift,
                occurred_at: DateTime<Utc>,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<String, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let campaign_id = Self::campaign_id(&mut tx, &gift.campaign).await?;
                let gift_id: i64 = sqlx::query_scalar(
                    "INSERT INTO offline_gifts (campaign_id, amount_pence, method, received_on, email, name, note, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(campaign_id)
                .bind(gift.amount.0)
                .bind(gift.method.as_str())
                .bind(gift.received_on)
                .bind(gift.email.as_ref().map(|e| e.as_str()))
                .bind(&gift.name)
                .bind(&gift.note)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let entry = LedgerEntry {
                    amount: gift.amount,
                    gifts: 1,
                    source: "offline",
                    source_id: format!("gift-{gift_id}"),
                    occurred_at,
                };
                Self::book_in(&mut tx, campaign_id, &entry, now).await?;
                if let Some(email) = &gift.email {
                    let title: String = sqlx::query_scalar("SELECT title FROM campaigns WHERE id = $1")
                        .bind(campaign_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let purpose = format!("a gift by {} to the {title}", gift.method.as_str().replace('_', " "));
                    Self::receipt_in(&mut tx, email.as_str(), &entry.source_id, gift.amount, gift.received_on, purpose, now)
                        .await?;
                }
                let detail = format!(
                    "{} {} by {} received {} for {}",
                    entry.source_id,
                    gift.amount,
                    gift.method.as_str(),
                    gift.received_on,
                    gift.campaign
                );
                Self::audit_in(&mut tx, actor, "gift.add", &detail, now).await?;
                tx.commit().await?;
                Ok(entry.source_id)
            }

            async fn book(&self, campaign: &str, entry: &LedgerEntry, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let campaign_id = Self::campaign_id(&mut tx, campaign).await?;
                let booked = Self::book_in(&mut tx, campaign_id, entry, now).await?;
                tx.commit().await?;
                Ok(booked)
            }

            async fn create_donation(
                &self,
                id: &str,
                d: &NewDonation,
                campaign: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let campaign_id = Self::campaign_id(&mut tx, campaign).await?;
                let person_id = Self::person_in(&mut tx, &d.email, d.name.as_deref(), now).await?;
                sqlx::query(
                    "INSERT INTO donations (id, person_id, campaign_id, amount_pence, frequency, name, display_name, place,
                                            anonymous, marketing_consent, status, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)",
                )
                .bind(id)
                .bind(person_id)
                .bind(campaign_id)
                .bind(d.amount.0)
                .bind(d.frequency.as_str())
                .bind(&d.name)
                .bind(&d.display_name)
                .bind(&d.place)
                .bind(d.anonymous)
                .bind(d.marketing_consent)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn donation(&self, id: &str) -> Result<Option<Donation>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT d.id, c.slug AS campaign, p.email, d.amount_pence AS amount, d.frequency, d.status
                     FROM donations d JOIN people p ON p.id = d.person_id JOIN campaigns c ON c.id = d.campaign_id
                     WHERE d.id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn cancel_donation(&self, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE donations SET status = 'cancelled' WHERE id = $1 AND status = 'pending'")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn recent_gifts(&self, limit: i64) -> Result<Vec<PublicGift>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT amount_pence AS amount, place, display_name, anonymous FROM donations
                     WHERE status = 'paid' ORDER BY paid_at DESC, created_at DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn supporter(&self, subscription: &str) -> Result<Option<Supporter>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT subscription, amount_pence AS amount, status FROM supporters WHERE subscription = $1",
                )
                .bind(subscription)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn apply_payment_event(
                &self,
                event: &ReceivedEvent,
                meaning: &PaymentEvent,
                retry: bool,
                now: DateTime<Utc>,
            ) -> Result<EventOutcome, StoreError> {
                // Most events are a paid one-off gift: where the engine can, they are booked in batches.
                if !retry
                    && let Some(gifts) = &self.gifts
                    && let PaymentEvent::GiftPaid { payment, amount, donation, counts_on, email, customer, .. } = meaning
                {
                    let gift = super::gift_batch::PaidGift {
                        event: event.clone(),
                        received_at: now,
                        counts_on: *counts_on,
                        payment: payment.clone(),
                        amount: *amount,
                        donation: donation.clone(),
                        email: email.clone(),
                        customer: customer.clone(),
                    };
                    if let Some(outcome) = gifts.book(gift).await {
                        return Ok(outcome);
                    }
                }
                let mut tx = self.pool.begin_with($begin).await?;
                // Stored first: a second delivery, even a concurrent one, finds it and changes nothing.
                let fresh: Option<String> = if retry {
                    sqlx::query_scalar(concat!(
                        "SELECT id FROM stripe_events WHERE id = $1 AND status IN ('parked', 'unmatched', 'unparsed')",
                        $for_update
                    ))
                        .bind(&event.id)
                        .fetch_optional(&mut *tx)
                        .await?
                } else {
                    sqlx::query_scalar(
                        "INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
                         VALUES ($1, $2, $3, $4, 'processed', $5, $5) ON CONFLICT (id) DO NOTHING RETURNING id",
                    )
                    .bind(&event.id)
                    .bind(&event.kind)
                    .bind(event.created)
                    .bind(&event.payload)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                };
                if fresh.is_none() {
                    return Ok(EventOutcome::Duplicate);
                }
                let mut outcome = Self::apply_in(&mut tx, event, meaning, now).await?;
                if let EventOutcome::Processed { may_unpark, .. } = &mut outcome {
                    *may_unpark = meaning.payment_created().is_some();
                }
                let waiting_for = match &outcome {
                    EventOutcome::Parked { waiting_for } => Some(waiting_for.as_str()),
                    _ => None,
                };
                let note = match meaning {
                    PaymentEvent::Unmatched { reason } => Some(reason.as_str()),
                    _ => None,
                };
                // A new event was stored as processed; only another outcome needs writing.
                if retry || outcome.label() != "processed" {
                    sqlx::query(
                        "UPDATE stripe_events SET status = $2, waiting_for = $3, note = $4, processed_at = $5 WHERE id = $1",
                    )
                    .bind(&event.id)
                    .bind(outcome.label())
                    .bind(waiting_for)
                    .bind(note)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }

            async fn record_unparsed_event(&self, event: &ReceivedEvent, note: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO stripe_events (id, type, created, payload, status, note, received_at)
                     VALUES ($1, $2, $3, $4, 'unparsed', $5, $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&event.id)
                .bind(&event.kind)
                .bind(event.created)
                .bind(&event.payload)
                .bind(note)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn parked_events(&self) -> Result<Vec<ReceivedEvent>, StoreError> {
                let rows: Vec<(String, String, DateTime<Utc>, String)> = sqlx::query_as(
                    "SELECT id, type, created, payload FROM stripe_events WHERE status = 'parked' ORDER BY created, id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id, kind, created, payload)| ReceivedEvent { id, kind, created, payload }).collect())
            }

            async fn claim_emails(
                &self,
                now: DateTime<Utc>,
                claimed_until: DateTime<Utc>,
                limit: i64,
                claimant: &str,
            ) -> Result<Vec<OutboxEmail>, StoreError> {
                Ok(sqlx::query_as(concat!(
                    "UPDATE outbox SET claimed_until = $1, claimed_by = $4, attempts = attempts + 1,
                                       first_attempt_at = COALESCE(first_attempt_at, $2)
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
                                    AND (claimed_until IS NULL OR claimed_until < $2)
                                  ORDER BY id LIMIT $3",
                    $skip_locked,
                    ")
                     RETURNING id, recipient, message_key, payload, attempts, first_attempt_at"
                ))
                .bind(claimed_until)
                .bind(now)
                .bind(limit)
                .bind(claimant)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn emails_tried(&self, claimant: &str, tried: &[Tried]) -> Result<(), StoreError> {
                self.mark_emails(claimant, tried).await
            }

            async fn release_email(&self, id: i64, claimant: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL, attempts = attempts - 1
                     WHERE id = $1 AND status = 'pending' AND claimed_by = $2",
                )
                .bind(id)
                .bind(claimant)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
                            COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
                            COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed
                     FROM outbox",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
                Ok(sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn create_share_application(
                &self,
                id: &str,
                a: &NewShareApplication,
                cap: Pence,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let person_id = Self::person_in(&mut tx, &a.email, Some(&a.name), now).await?;
                sqlx::query(
                    "INSERT INTO share_applications (id, person_id, name, address_line1, address_line2, town, postcode, email,
                                                     amount_pence, shares, cap_pence, status, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12)",
                )
                .bind(id)
                .bind(person_id)
                .bind(&a.name)
                .bind(&a.address.line1)
                .bind(&a.address.line2)
                .bind(&a.address.town)
                .bind(&a.address.postcode)
                .bind(a.email.as_str())
                .bind(a.amount.0)
                .bind(a.shares)
                .bind(cap.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn share_application(&self, id: &str) -> Result<Option<ShareApplication>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, amount_pence AS amount, shares, status FROM share_applications WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn cancel_share_application(&self, id: &str) -> Result<bool, StoreError> {
                let done =
                    sqlx::query("UPDATE share_applications SET status = 'cancelled' WHERE id = $1 AND status = 'pending'")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn holding(&self, email: &EmailAddress) -> Result<Pence, StoreError> {
                let paid: Option<i64> = sqlx::query_scalar(
                    "SELECT m.amount_paid_pence FROM members m JOIN people p ON p.id = m.person_id WHERE p.email_key = $1",
                )
                .bind(email.key())
                .fetch_optional(&self.pool)
                .await?;
                Ok(Pence(paid.unwrap_or(0)))
            }

            async fn register(&self) -> Result<Vec<RegisterEntry>, StoreError> {
                let rows: Vec<MemberRow> = sqlx::query_as(
                    "SELECT member_number, name, address_line1, address_line2, town, postcode, email, shares,
                            amount_paid_pence, entered_on, ceased_on
                     FROM members ORDER BY member_number",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(RegisterEntry::from).collect())
            }

            async fn allotments(&self, member: Option<i64>) -> Result<Vec<Allotment>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT member_number, application_id, shares, amount_pence AS amount, allotted_on FROM share_allotments
                     WHERE $1 IS NULL OR member_number = $1 ORDER BY id",
                )
                .bind(member)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn share_capital(&self) -> Result<Pence, StoreError> {
                let paid: i64 =
                    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount_paid_pence), 0) AS BIGINT) FROM members")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(Pence(paid))
            }

            async fn add_staff(
                &self,
                email: &EmailAddress,
                password_hash: &str,
                role: Role,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let added: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO staff (email, email_key, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (email_key) DO UPDATE SET email = excluded.email, password_hash = excluded.password_hash,
                       role = excluded.role, removed_at = NULL
                     WHERE staff.removed_at IS NOT NULL
                     RETURNING id",
                )
                .bind(email.as_str())
                .bind(email.key())
                .bind(password_hash)
                .bind(role.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = added else {
                    return Err(StoreError::DuplicateStaff(email.to_string()));
                };
                let detail = format!("staff #{id} {email} as {}", role.as_str());
                Self::audit_in(&mut tx, actor, "staff.add", &detail, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn staff_member(&self, email: &EmailAddress) -> Result<Option<StaffMember>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, role, password_hash FROM staff WHERE email_key = $1 AND removed_at IS NULL",
                )
                .bind(email.key())
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn counted_payments(&self, since: DateTime<Utc>) -> Result<Vec<CountedPayment>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT payment, amount_pence AS amount, refunded_pence AS refunded, customer, paid_at
                     FROM payments WHERE paid_at >= $1 ORDER BY paid_at",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use campaign_columns;
pub(crate) use campaign_for_day_order;
pub(crate) use shared_store;
