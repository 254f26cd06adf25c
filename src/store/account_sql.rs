//! Readers' own page (SPEC §10): sign-in links and their limits, readers' sessions, and what a
//! reader has given and holds, found by their address. Written once for both engines and
//! instantiated below for each, as `staff_sql.rs` is.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{MemberChange, StoreError};
use crate::domain::account::{
    DetailsChange, Erasure, LinkUse, ReaderPayment, details_change, keys_naming, scrub_event,
};
use crate::domain::{EmailAddress, Notice, Pence, PostalAddress, RegisterEntry, Supporter};

/// Everything the readers' page reads and changes. Every method takes the reader's address
/// lower-cased (`EmailAddress::key`), which is how one person is found (SPEC §7).
#[async_trait]
pub trait ReaderAccounts: Send + Sync {
    /// The address (lower-cased) of the person `id`, for their page in the staff area.
    async fn person_key(&self, id: i64) -> Result<Option<String>, StoreError>;
    /// Whether the address has a counted payment, an offline gift, monthly support or
    /// membership: only such an address is sent a link (SPEC §10).
    async fn is_known_reader(&self, email_key: &str) -> Result<bool, StoreError>;
    /// Keeps a link (only the hash of its token) valid until `expires_at`, and queues its email
    /// in the same transaction, to the address on record for `email` (as the reader gave it on
    /// a gift or the join form), or `email` itself if none is kept.
    async fn create_reader_link(
        &self,
        email: &EmailAddress,
        token_hash: &str,
        notice: &Notice,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Uses a link once: the reader it signs in, or why it cannot.
    async fn use_reader_link(&self, token_hash: &str, now: DateTime<Utc>) -> Result<LinkUse, StoreError>;
    /// What a link is, without using it: a mail scanner's GET changes nothing (SPEC §10).
    async fn peek_reader_link(&self, token_hash: &str, now: DateTime<Utc>) -> Result<LinkUse, StoreError>;

    /// Every payment: gifts online and offline, supporter payments, and payments for shares,
    /// newest first, each with its receipt number.
    async fn reader_payments(&self, email_key: &str) -> Result<Vec<ReaderPayment>, StoreError>;
    /// The emails about payments sent to the reader: `(reference, notice)`, oldest first.
    async fn reader_notices(&self, email_key: &str) -> Result<Vec<(String, Notice)>, StoreError>;
    /// Queues a notice to the reader again, with a Message-ID of its own.
    async fn send_again(
        &self,
        email: &str,
        notice: &Notice,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Every donation form the reader filled in (paid, or unpaid under the address they typed),
    /// with the name, nickname and place given with it, oldest first: what their export holds.
    async fn reader_donations(&self, email_key: &str) -> Result<Vec<ReaderDonation>, StoreError>;
    /// The name on the reader's record; each share application under their address as they
    /// typed it; and each offline gift recorded for them with the name and note staff kept,
    /// oldest first: the rest of what their export holds.
    async fn reader_records(
        &self,
        email_key: &str,
    ) -> Result<(Option<String>, Vec<ReaderApplication>, Vec<ReaderOfflineGift>), StoreError>;
    /// Monthly support, newest first.
    async fn reader_support(&self, email_key: &str) -> Result<Vec<Supporter>, StoreError>;
    /// The reader's entry in the register, if a member.
    async fn reader_membership(&self, email_key: &str) -> Result<Option<RegisterEntry>, StoreError>;
    /// Marketing consent: each change, on a paid gift's form or on the page, newest first (by
    /// the time it was true from, then by the order it was kept, so two forms paid in the same
    /// second are in order). The first is the reader's choice now; none means no.
    async fn reader_consent(&self, email_key: &str) -> Result<Vec<ConsentChange>, StoreError>;
    /// Records a change of consent made by the reader, with its source.
    async fn change_consent(
        &self,
        email: &EmailAddress,
        consent: bool,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A member's new name and address: the register takes them at once, and the audit log
    /// says "changed by the member" with what changed (SPEC §10); nothing is written when they
    /// are the register's already.
    async fn change_member_details(
        &self,
        email_key: &str,
        name: &str,
        address: &PostalAddress,
        now: DateTime<Utc>,
    ) -> Result<DetailsChange, StoreError>;
    /// Emails sent or waiting for the reader: `(created, status, notice)`, oldest first.
    async fn reader_emails(&self, email_key: &str) -> Result<Vec<(DateTime<Utc>, String, Notice)>, StoreError>;
    /// When the reader signed in by link, oldest first.
    async fn reader_signins(&self, email_key: &str) -> Result<Vec<DateTime<Utc>>, StoreError>;
    /// Whether the reader is a member (not ceased), and their monthly gifts, whatever their
    /// status: `domain::account::erasure_refused` says whether either keeps their data (SPEC §10).
    async fn erasure_blocks(&self, email_key: &str) -> Result<(bool, Vec<Supporter>), StoreError>;
    /// Replaces the reader's email, name, address, nickname and place by `pseudonym` (or
    /// nothing) in every table and stored webhook payload, in one transaction; amounts, dates,
    /// receipt numbers and the ledger stay. Ends their sessions and records the erasure and
    /// `why` in the audit log; at the reader's request, queues the confirmation to their own
    /// address, which the outbox forgets as it marks it sent or given up (`Store::emails_tried`).
    /// The register of members is kept, as the law requires. False, changing nothing, when
    /// nothing is held under the address (an erasure done meanwhile by another instance).
    async fn erase_reader(
        &self,
        email_key: &str,
        pseudonym: &str,
        why: &Erasure,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` people (their address lower-cased) with no activity since `before`: no
    /// gift, payment, form, sign-in link or consent change. Never a member, a former member
    /// whose register entry is kept, or a monthly supporter whose support has not ended by then.
    async fn inactive_givers(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError>;
    /// Stored webhook events received before `before` that never counted (unmatched, ignored or
    /// unreadable: a Payment Link's checkout, another product's) keep their id, type and time but
    /// not their payload, which may name someone no person of ours leads to (SPEC §10). How many.
    async fn forget_uncounted_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Removes from the register every former member who ceased before `ceased_before`: their
    /// name, address and email leave the row (kept, without them, for the allotments that refer
    /// to it) and the applications and pending changes that held them; audited. The member
    /// numbers removed.
    async fn remove_former_members(&self, ceased_before: NaiveDate, now: DateTime<Utc>)
    -> Result<Vec<i64>, StoreError>;
    /// The pending changes of the reader's register entry typed when buying shares, oldest first.
    async fn reader_member_changes(&self, email_key: &str) -> Result<Vec<MemberChange>, StoreError>;
    /// The member's answer to their pending change `id`: with `accept` the register takes it
    /// at once, otherwise keeps what it holds; audited as the member's choice. False, changing
    /// nothing, when it is not theirs or not pending.
    async fn decide_member_change(
        &self,
        email_key: &str,
        id: i64,
        accept: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// One change of marketing consent.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentChange {
    pub marketing_consent: bool,
    /// Where it was made: "your page", "the donation form".
    pub source: String,
    pub at: DateTime<Utc>,
}

/// A donation form as the reader filled it in (SPEC §4's field names), for their export.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ReaderDonation {
    /// Our id of it (`metadata.donation` at Stripe).
    pub donation: String,
    pub campaign: String,
    /// What the form asked for, in pence.
    pub amount_pence: i64,
    /// `once` or `monthly`.
    pub frequency: String,
    /// `pending`, `processing`, `paid`, `failed` or `cancelled`.
    pub status: String,
    pub name: Option<String>,
    /// The nickname for the public list of gifts.
    pub display_name: Option<String>,
    /// The town given for the public list.
    pub place: Option<String>,
    pub anonymous: bool,
    pub marketing_consent: bool,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// A share application as the reader typed it (the `/join` form's field names), for their export.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ReaderApplication {
    /// Our id of it (`metadata.application` at Stripe).
    pub application: String,
    pub name: String,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub town: String,
    pub postcode: String,
    /// What it was for, in pence.
    pub amount_pence: i64,
    pub shares: i64,
    /// `pending`, `allotted`, `held` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// An offline gift recorded for the reader, with what staff kept of it, for their export.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ReaderOfflineGift {
    /// Its reference (`GiftReference`), as on the page's list of gifts.
    pub reference: String,
    /// The name staff recorded with it, and their note.
    pub name: Option<String>,
    pub note: Option<String>,
}

/// A payment row before its receipt number is attached.
#[derive(sqlx::FromRow)]
struct PaymentRow {
    reference: String,
    paid_at: DateTime<Utc>,
    amount: i64,
    refunded: i64,
    campaign: String,
    method: String,
    shares: bool,
}

/// The receipt number each payment's receipt or membership email gave it.
fn receipt_numbers(notices: &[(String, Notice)]) -> std::collections::HashMap<&str, &str> {
    let mut numbers = std::collections::HashMap::new();
    for (reference, notice) in notices {
        if let Notice::Receipt { number, .. } | Notice::Membership { number, .. } = notice {
            numbers.entry(reference.as_str()).or_insert(number.as_str());
        }
    }
    numbers
}

fn encode(notice: &Notice) -> Result<String, StoreError> {
    serde_json::to_string(notice).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))
}

macro_rules! reader_accounts {
    ($engine:ty, begin_write: $begin:literal, for_update: $for_update:literal) => {
        #[async_trait]
        impl ReaderAccounts for super::sql::SqlStore<$engine> {
            async fn person_key(&self, id: i64) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT email_key FROM people WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn is_known_reader(&self, email_key: &str) -> Result<bool, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM payments WHERE LOWER(email) = $1)
                         OR EXISTS (SELECT 1 FROM offline_gifts o JOIN people pe ON pe.id = o.person_id
                                    WHERE pe.email_key = $1)
                         OR EXISTS (SELECT 1 FROM supporters s JOIN people pe ON pe.id = s.person_id
                                    WHERE pe.email_key = $1)
                         OR EXISTS (SELECT 1 FROM members m JOIN people pe ON pe.id = m.person_id
                                    WHERE pe.email_key = $1)",
                )
                .bind(email_key)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn create_reader_link(
                &self,
                email: &EmailAddress,
                token_hash: &str,
                notice: &Notice,
                expires_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                // The link goes to the address as the reader gave it when they gave or joined,
                // not as typed on the sign-in form (`ADA@Example.org`).
                let recipient: String = sqlx::query_scalar(
                    "SELECT COALESCE((SELECT email FROM people WHERE email_key = $1),
                                     (SELECT MIN(email) FROM payments WHERE LOWER(email) = $1), $2)",
                )
                .bind(email.key())
                .bind(email.as_str())
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO reader_links (token_hash, email_key, email, created_at, expires_at) VALUES ($1, $2, $5, $3, $4)",
                )
                .bind(token_hash)
                .bind(email.key())
                .bind(now)
                .bind(expires_at)
                .bind(&recipient)
                .execute(&mut *tx)
                .await?;
                // The outbox replaces the payload by what may be kept as it marks the email sent.
                let kept = notice.kept_once_sent().as_ref().map(encode).transpose()?;
                sqlx::query(
                    "INSERT INTO outbox (recipient, message_key, payload, status, created_at, payload_once_sent)
                     VALUES ($1, $2, $3, 'pending', $4, $5)",
                )
                .bind(&recipient)
                .bind(uuid::Uuid::new_v4().simple().to_string())
                .bind(encode(notice)?)
                .bind(now)
                .bind(kept)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn use_reader_link(&self, token_hash: &str, now: DateTime<Utc>) -> Result<LinkUse, StoreError> {
                // One statement: of two posts of the same link at once, one signs in.
                let used: Option<String> = sqlx::query_scalar(
                    "UPDATE reader_links SET used_at = $2
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING email",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(email) = used {
                    return Ok(LinkUse::Good(email));
                }
                // Not used now, so not good: used meanwhile, expired, or never ours.
                Ok(match self.peek_reader_link(token_hash, now).await? {
                    LinkUse::Good(_) => LinkUse::Used,
                    other => other,
                })
            }

            async fn peek_reader_link(&self, token_hash: &str, now: DateTime<Utc>) -> Result<LinkUse, StoreError> {
                let found: Option<(String, Option<DateTime<Utc>>, DateTime<Utc>)> =
                    sqlx::query_as("SELECT email, used_at, expires_at FROM reader_links WHERE token_hash = $1")
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(LinkUse::judge(found, now))
            }

            async fn reader_payments(&self, email_key: &str) -> Result<Vec<ReaderPayment>, StoreError> {
                let rows: Vec<PaymentRow> = sqlx::query_as(
                    "SELECT p.payment AS reference, p.paid_at, p.amount_pence AS amount, p.refunded_pence AS refunded,
                            c.title AS campaign,
                            CASE WHEN d.frequency = 'monthly' OR p.payment LIKE 'in\\_%' ESCAPE '\\' THEN 'monthly'
                                 ELSE 'online' END AS method,
                            FALSE AS shares
                     FROM payments p JOIN campaigns c ON c.id = p.campaign_id LEFT JOIN donations d ON d.id = p.donation_id
                     WHERE LOWER(p.email) = $1
                     UNION ALL
                     SELECT o.source_id, l.occurred_at, o.amount_pence, 0, c.title, o.method, FALSE
                     FROM offline_gifts o JOIN people pe ON pe.id = o.person_id JOIN campaigns c ON c.id = o.campaign_id
                     JOIN ledger l ON l.source = 'offline' AND l.source_id = o.source_id
                     WHERE pe.email_key = $1
                     UNION ALL
                     SELECT a.payment, a.paid_at, a.amount_pence, a.refunded_pence, 'shares', 'online', TRUE
                     FROM share_applications a
                     WHERE LOWER(a.email) = $1 AND a.payment IS NOT NULL AND a.paid_at IS NOT NULL
                     ORDER BY 2 DESC, 1",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?;
                let notices = self.reader_notices(email_key).await?;
                let numbers = receipt_numbers(&notices);
                Ok(rows
                    .into_iter()
                    .map(|r| ReaderPayment {
                        receipt: numbers.get(r.reference.as_str()).map(|n| (*n).to_owned()),
                        reference: r.reference,
                        paid_at: r.paid_at,
                        amount: Pence(r.amount),
                        refunded: Pence(r.refunded),
                        campaign: r.campaign,
                        method: r.method,
                        shares: r.shares,
                    })
                    .collect())
            }

            async fn reader_notices(&self, email_key: &str) -> Result<Vec<(String, Notice)>, StoreError> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT reference, payload FROM outbox
                     WHERE LOWER(recipient) = $1 AND reference IS NOT NULL ORDER BY id",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().filter_map(|(r, p)| serde_json::from_str(&p).ok().map(|n| (r, n))).collect())
            }

            async fn send_again(
                &self,
                email: &str,
                notice: &Notice,
                reference: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference)
                     VALUES ($1, $2, $3, 'pending', $4, $5)",
                )
                .bind(email)
                .bind(uuid::Uuid::new_v4().simple().to_string())
                .bind(encode(notice)?)
                .bind(now)
                .bind(reference)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn reader_donations(&self, email_key: &str) -> Result<Vec<ReaderDonation>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT d.id AS donation, c.title AS campaign, d.amount_pence, d.frequency, d.status, d.name,
                            d.display_name, d.place, d.anonymous, d.marketing_consent, d.created_at, d.paid_at
                     FROM donations d JOIN campaigns c ON c.id = d.campaign_id
                     WHERE LOWER(d.email) = $1 OR d.person_id = (SELECT id FROM people WHERE email_key = $1)
                     ORDER BY d.created_at, d.id",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn reader_records(
                &self,
                email_key: &str,
            ) -> Result<(Option<String>, Vec<ReaderApplication>, Vec<ReaderOfflineGift>), StoreError> {
                let name: Option<Option<String>> = sqlx::query_scalar("SELECT name FROM people WHERE email_key = $1")
                    .bind(email_key)
                    .fetch_optional(&self.pool)
                    .await?;
                let applications = sqlx::query_as(
                    "SELECT id AS application, name, address_line1, address_line2, town, postcode, amount_pence, shares,
                            status, created_at
                     FROM share_applications WHERE LOWER(email) = $1 ORDER BY created_at, id",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?;
                let gifts = sqlx::query_as(
                    "SELECT o.source_id AS reference, o.name, o.note FROM offline_gifts o
                     WHERE LOWER(o.email) = $1 OR o.person_id = (SELECT id FROM people WHERE email_key = $1)
                     ORDER BY o.created_at, o.id",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?;
                Ok((name.flatten(), applications, gifts))
            }

            async fn reader_support(&self, email_key: &str) -> Result<Vec<Supporter>, StoreError> {
                let rows: Vec<super::SupporterRecordRow> = sqlx::query_as(concat!(
                    super::supporters::supporter_select!(),
                    "FROM supporters s JOIN people pe ON pe.id = s.person_id
                     WHERE pe.email_key = $1 ORDER BY s.started_at DESC, s.subscription"
                ))
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|row| Supporter::from(crate::ledger::SupporterRecord::from(row))).collect())
            }

            async fn reader_membership(&self, email_key: &str) -> Result<Option<RegisterEntry>, StoreError> {
                let row: Option<super::MemberRow> = sqlx::query_as(
                    "SELECT m.member_number, m.name, m.address_line1, m.address_line2, m.town, m.postcode, m.email,
                            m.shares, m.amount_paid_pence, m.entered_on, m.ceased_on
                     FROM members m JOIN people pe ON pe.id = m.person_id
                     WHERE pe.email_key = $1 AND m.removed_on IS NULL",
                )
                .bind(email_key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(RegisterEntry::from))
            }

            async fn reader_consent(&self, email_key: &str) -> Result<Vec<ConsentChange>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT c.marketing_consent, c.source, c.at FROM consent_changes c
                     JOIN people pe ON pe.id = c.person_id WHERE pe.email_key = $1 ORDER BY c.at DESC, c.id DESC",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn change_consent(
                &self,
                email: &EmailAddress,
                consent: bool,
                source: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                // The reader's own confirmed action may make their record (SPEC §8).
                sqlx::query(
                    "INSERT INTO people (email_key, email, created_at) VALUES ($1, $2, $3) ON CONFLICT (email_key) DO NOTHING",
                )
                .bind(email.key())
                .bind(email.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Only a change is a change: the same choice sent again adds nothing to the history.
                sqlx::query(
                    "INSERT INTO consent_changes (person_id, marketing_consent, source, at)
                     SELECT p.id, $2, $3, $4 FROM people p WHERE p.email_key = $1
                       AND $2 IS DISTINCT FROM (SELECT c.marketing_consent FROM consent_changes c
                                                WHERE c.person_id = p.id ORDER BY c.at DESC, c.id DESC LIMIT 1)",
                )
                .bind(email.key())
                .bind(consent)
                .bind(source)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn change_member_details(
                &self,
                email_key: &str,
                name: &str,
                address: &PostalAddress,
                now: DateTime<Utc>,
            ) -> Result<DetailsChange, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let member: Option<i64> = sqlx::query_scalar(
                    "SELECT m.member_number FROM members m JOIN people pe ON pe.id = m.person_id
                     WHERE pe.email_key = $1 AND m.removed_on IS NULL",
                )
                .bind(email_key)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(member) = member else {
                    return Ok(DetailsChange::NotMember);
                };
                if !Self::member_changes_details_in(&mut tx, member, name, address, "", now).await? {
                    return Ok(DetailsChange::Unchanged);
                }
                tx.commit().await?;
                Ok(DetailsChange::Changed)
            }

            async fn reader_member_changes(&self, email_key: &str) -> Result<Vec<MemberChange>, StoreError> {
                let Some(member) = self.reader_membership(email_key).await? else {
                    return Ok(Vec::new());
                };
                let pending = crate::store::Register::pending_member_changes(self).await?;
                Ok(pending.into_iter().filter(|c| c.member_number == member.member_number).collect())
            }

            async fn decide_member_change(
                &self,
                email_key: &str,
                id: i64,
                accept: bool,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                // Decided once: of two answers at once, the first wins and the second changes nothing.
                let change: Option<(i64, String, String, Option<String>, String, String)> = sqlx::query_as(
                    "UPDATE member_changes SET status = $3, decided_at = $4
                     WHERE id = $1 AND status = 'pending' AND member_number IN (
                         SELECT m.member_number FROM members m JOIN people pe ON pe.id = m.person_id
                         WHERE pe.email_key = $2 AND m.removed_on IS NULL)
                     RETURNING member_number, name, address_line1, address_line2, town, postcode",
                )
                .bind(id)
                .bind(email_key)
                .bind(if accept { "accepted" } else { "rejected" })
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((member, name, line1, line2, town, postcode)) = change else {
                    return Ok(false);
                };
                if accept {
                    let address = PostalAddress { line1, line2, town, postcode };
                    let how = " (as typed when buying shares)";
                    if !Self::member_changes_details_in(&mut tx, member, &name, &address, how, now).await? {
                        let detail = format!(
                            "member no. {member}: the details typed when buying shares accepted by the member; \
                             the register held them already"
                        );
                        Self::member_audit_in(&mut tx, member, "member.change.accept", &detail, now).await?;
                    }
                } else {
                    let detail =
                        format!("member no. {member}: the name and address typed when buying shares rejected by the member");
                    Self::member_audit_in(&mut tx, member, "member.change.reject", &detail, now).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn reader_emails(
                &self,
                email_key: &str,
            ) -> Result<Vec<(DateTime<Utc>, String, Notice)>, StoreError> {
                let rows: Vec<(DateTime<Utc>, String, String)> = sqlx::query_as(
                    "SELECT created_at, status, payload FROM outbox WHERE LOWER(recipient) = $1 ORDER BY id",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().filter_map(|(at, s, p)| serde_json::from_str(&p).ok().map(|n| (at, s, n))).collect())
            }

            async fn erasure_blocks(&self, email_key: &str) -> Result<(bool, Vec<Supporter>), StoreError> {
                let member: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM members m JOIN people pe ON pe.id = m.person_id
                                    WHERE pe.email_key = $1 AND m.ceased_on IS NULL)",
                )
                .bind(email_key)
                .fetch_one(&self.pool)
                .await?;
                Ok((member, self.reader_support(email_key).await?))
            }

            async fn erase_reader(
                &self,
                email_key: &str,
                pseudonym: &str,
                why: &Erasure,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                // The person's row first, locked: of two erasures of one person at once (the
                // retention job on two instances), the second waits, then finds nothing to erase;
                // and a payment of theirs being applied (which holds them `FOR KEY SHARE`, see
                // `make_person`) commits first, so that what it stored is erased too.
                let person: Option<i64> =
                    sqlx::query_scalar(concat!("SELECT id FROM people WHERE email_key = $1", $for_update))
                        .bind(email_key)
                        .fetch_optional(&mut *tx)
                        .await?;
                let texts: Vec<String> = sqlx::query_scalar(ERASED_TEXTS).bind(email_key).fetch_all(&mut *tx).await?;
                let texts: Vec<String> = texts.into_iter().filter(|t| !t.trim().is_empty()).collect();
                if person.is_none() && texts.is_empty() {
                    return Ok(false);
                }
                for text in &texts {
                    let quoted = serde_json::to_string(text).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
                    sqlx::query("DELETE FROM sessions WHERE area = 'reader' AND REPLACE(data, $1, '') <> data")
                        .bind(&quoted)
                        .execute(&mut *tx)
                        .await?;
                }
                // Each stored event that names them is rewritten without them; an event that
                // cannot be read has their addresses replaced as text.
                let events: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, payload FROM stripe_events WHERE LOWER(payload) LIKE '%' || $1 || '%' ESCAPE '\\'",
                )
                .bind(crate::store::staff_sql::escape_like(email_key))
                .fetch_all(&mut *tx)
                .await?;
                for (id, payload) in events {
                    let scrubbed = match serde_json::from_str::<serde_json::Value>(&payload) {
                        Ok(mut value) => {
                            scrub_event(&mut value, &texts, pseudonym);
                            value.to_string()
                        }
                        Err(_) => texts.iter().fold(payload, |p, t| if t.contains('@') { p.replace(t.as_str(), pseudonym) } else { p }),
                    };
                    sqlx::query("UPDATE stripe_events SET payload = $2 WHERE id = $1")
                        .bind(&id)
                        .bind(scrubbed)
                        .execute(&mut *tx)
                        .await?;
                }
                // A former member's register entry stays (the law keeps it), but not the audit
                // log's record of their names and addresses (one removed from the register has
                // had it taken out already); their addresses leave it everywhere.
                let members: Vec<i64> = sqlx::query_scalar(
                    "SELECT m.member_number FROM members m JOIN people pe ON pe.id = m.person_id
                     WHERE pe.email_key = $1 AND m.removed_on IS NULL",
                )
                .bind(email_key)
                .fetch_all(&mut *tx)
                .await?;
                for member in members {
                    Self::scrub_member_audit_in(&mut tx, member, &texts, "erased").await?;
                }
                for text in texts.iter().filter(|t| t.contains('@')) {
                    sqlx::query("UPDATE audit_log SET detail = REPLACE(detail, $1, $2) WHERE REPLACE(detail, $1, '') <> detail")
                        .bind(text)
                        .bind(pseudonym)
                        .execute(&mut *tx)
                        .await?;
                }
                // Links not yet used expire, and emails not yet sent to them are not sent: no one
                // holding one may reach the pseudonymised record, nor mail the pseudonym.
                for statement in [
                    "UPDATE reader_links SET expires_at = $2 WHERE email_key = $1 AND used_at IS NULL AND expires_at > $2",
                    "UPDATE outbox SET status = 'failed', last_error = 'the reader erased their data', next_attempt_at = NULL
                     WHERE LOWER(recipient) = $1 AND status = 'pending'",
                ] {
                    sqlx::query(statement).bind(email_key).bind(now).execute(&mut *tx).await?;
                }
                let statements = [
                    "UPDATE payments SET email = $2 WHERE LOWER(email) = $1",
                    "UPDATE offline_gifts SET email = $2, name = NULL, note = NULL WHERE LOWER(email) = $1",
                    "UPDATE outbox SET recipient = $2 WHERE LOWER(recipient) = $1",
                    "UPDATE reader_links SET email = $2, email_key = $2 WHERE email_key = $1",
                    // An unpaid donation keeps the typed address without a person (issue 16, item 4).
                    "UPDATE donations SET email = $2, name = NULL, display_name = NULL, place = NULL
                     WHERE LOWER(email) = $1 OR person_id = (SELECT id FROM people WHERE email_key = $1)",
                    "UPDATE share_applications SET email = $2, name = 'erased', address_line1 = 'erased', address_line2 = NULL,
                            town = 'erased', postcode = 'erased'
                     WHERE LOWER(email) = $1",
                    "UPDATE people SET email_key = $2, email = $2, name = NULL WHERE email_key = $1",
                ];
                for statement in statements {
                    sqlx::query(statement).bind(email_key).bind(pseudonym).execute(&mut *tx).await?;
                }
                // The limits count under keys that name the address.
                for (theirs, erased) in keys_naming(email_key).iter().zip(keys_naming(pseudonym)) {
                    for statement in
                        ["UPDATE attempts SET key = $2 WHERE key = $1", "UPDATE attempt_keys SET key = $2 WHERE key = $1"]
                    {
                        sqlx::query(statement).bind(theirs).bind(&erased).execute(&mut *tx).await?;
                    }
                }
                // The confirmation goes to the address they erased, queued after every other copy
                // of it was replaced: the outbox forgets it in the write that marks it sent.
                let actor = match why {
                    Erasure::Requested { email } => {
                        sqlx::query(
                            "INSERT INTO outbox (recipient, message_key, payload, status, created_at, forget_recipient)
                             VALUES ($1, $2, $3, 'pending', $4, TRUE)",
                        )
                        .bind(email.as_str())
                        .bind(uuid::Uuid::new_v4().simple().to_string())
                        .bind(encode(&Notice::Erased)?)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        "the reader"
                    }
                    Erasure::Retention { .. } => "the retention job",
                };
                let who = person.map_or_else(|| "a reader".to_owned(), |id| format!("person #{id}"));
                let detail = format!("{who}: personal data erased {}, now {pseudonym}", why.reason());
                let actor = crate::store::Actor { staff_id: None, name: actor.to_owned() };
                Self::audit_in(&mut tx, &actor, "reader.erase", &detail, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn inactive_givers(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(INACTIVE_GIVERS).bind(before).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn forget_uncounted_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE stripe_events SET payload = '{}'
                     WHERE received_at < $1 AND status IN ('unmatched', 'ignored', 'unparsed') AND payload <> '{}'",
                )
                .bind(before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn remove_former_members(
                &self,
                ceased_before: NaiveDate,
                now: DateTime<Utc>,
            ) -> Result<Vec<i64>, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                // One statement: of two instances at once, each row is removed by one of them.
                let removed: Vec<i64> = sqlx::query_scalar(
                    "UPDATE members SET name = 'removed', address_line1 = 'removed', address_line2 = NULL,
                            town = 'removed', postcode = 'removed',
                            email = 'removed-' || CAST(member_number AS TEXT) || '@erased.invalid', removed_on = $2
                     WHERE ceased_on < $1 AND removed_on IS NULL RETURNING member_number",
                )
                .bind(ceased_before)
                .bind(now.date_naive())
                .fetch_all(&mut *tx)
                .await?;
                for member in &removed {
                    Self::scrub_member_audit_in(&mut tx, *member, &[], "removed").await?;
                    sqlx::query("DELETE FROM member_changes WHERE member_number = $1")
                        .bind(member)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "UPDATE share_applications SET name = 'removed', address_line1 = 'removed', address_line2 = NULL,
                                town = 'removed', postcode = 'removed'
                         WHERE id IN (SELECT application_id FROM share_allotments WHERE member_number = $1)",
                    )
                    .bind(member)
                    .execute(&mut *tx)
                    .await?;
                    let detail = format!("member no. {member}: register entry removed 10 years after they ceased");
                    Self::member_audit_in(&mut tx, *member, "member.remove", &detail, now).await?;
                }
                tx.commit().await?;
                Ok(removed)
            }

            async fn reader_signins(&self, email_key: &str) -> Result<Vec<DateTime<Utc>>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT used_at FROM reader_links WHERE email_key = $1 AND used_at IS NOT NULL ORDER BY used_at",
                )
                .bind(email_key)
                .fetch_all(&self.pool)
                .await?)
            }
        }

        impl super::sql::SqlStore<$engine> {
            /// A member's new name and address into the register, audited as changed by the member
            /// with each field's value before and after. False, writing nothing, when the register
            /// holds them already.
            async fn member_changes_details_in(
                tx: &mut sqlx::Transaction<'_, $engine>,
                member: i64,
                name: &str,
                address: &PostalAddress,
                how: &str,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let (before_name, line1, line2, town, postcode): (String, String, Option<String>, String, String) =
                    sqlx::query_as(
                        "SELECT name, address_line1, address_line2, town, postcode FROM members WHERE member_number = $1",
                    )
                    .bind(member)
                    .fetch_one(&mut **tx)
                    .await?;
                let before = PostalAddress { line1, line2, town, postcode };
                let Some(changed) = details_change((&before_name, &before), (name, address)) else {
                    return Ok(false);
                };
                sqlx::query(
                    "UPDATE members SET name = $2, address_line1 = $3, address_line2 = $4, town = $5, postcode = $6
                     WHERE member_number = $1",
                )
                .bind(member)
                .bind(name)
                .bind(&address.line1)
                .bind(&address.line2)
                .bind(&address.town)
                .bind(&address.postcode)
                .execute(&mut **tx)
                .await?;
                let detail = format!("member no. {member}: changed by the member{how}: {changed}");
                Self::member_audit_in(tx, member, "member.details", &detail, now).await?;
                Ok(true)
            }

            /// Takes a member's names and addresses out of the audit log's lines about them (SPEC
            /// §10), keeping every line: a change of their details still says who changed it and
            /// when, not from what to what; any other line about them has each of `texts` replaced
            /// by `placeholder`.
            async fn scrub_member_audit_in(
                tx: &mut sqlx::Transaction<'_, $engine>,
                member: i64,
                texts: &[String],
                placeholder: &str,
            ) -> Result<(), StoreError> {
                let about = format!("member no. {member}: %");
                sqlx::query(
                    "UPDATE audit_log SET detail = $2 WHERE detail LIKE $1 AND action IN ('member.details', 'member.change')",
                )
                .bind(&about)
                .bind(format!("member no. {member}: name or address changed; the texts were {placeholder}"))
                .execute(&mut **tx)
                .await?;
                // The longest first: a name is not left half-replaced by a shorter one inside it.
                let mut texts: Vec<&String> = texts.iter().collect();
                texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
                for text in texts {
                    sqlx::query("UPDATE audit_log SET detail = REPLACE(detail, $2, $3) WHERE detail LIKE $1")
                        .bind(&about)
                        .bind(text)
                        .bind(placeholder)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// A line in the audit log about a member's register entry, with no member of staff.
            async fn member_audit_in(
                tx: &mut sqlx::Transaction<'_, $engine>,
                member: i64,
                action: &str,
                detail: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let actor = crate::store::Actor { staff_id: None, name: format!("member no. {member}") };
                Self::audit_in(tx, &actor, action, detail, now).await
            }
        }
    };
}

/// People with no activity since `$1`, at most `$2` (see `inactive_givers`).
const INACTIVE_GIVERS: &str = "
    SELECT pe.email_key FROM people pe
    WHERE pe.created_at < $1 AND pe.email_key NOT LIKE '%@erased.invalid'
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.person_id = pe.id AND m.removed_on IS NULL)
      AND NOT EXISTS (SELECT 1 FROM supporters s
                      WHERE s.person_id = pe.id AND (s.status <> 'cancelled' OR s.status_at >= $1))
      AND NOT EXISTS (SELECT 1 FROM donations d
                      WHERE (d.person_id = pe.id OR LOWER(d.email) = pe.email_key) AND d.created_at >= $1)
      AND NOT EXISTS (SELECT 1 FROM payments p WHERE LOWER(p.email) = pe.email_key AND p.paid_at >= $1)
      AND NOT EXISTS (SELECT 1 FROM offline_gifts o WHERE o.person_id = pe.id AND o.created_at >= $1)
      AND NOT EXISTS (SELECT 1 FROM share_applications a WHERE LOWER(a.email) = pe.email_key AND a.created_at >= $1)
      AND NOT EXISTS (SELECT 1 FROM reader_links l WHERE l.email_key = pe.email_key AND l.created_at >= $1)
      AND NOT EXISTS (SELECT 1 FROM consent_changes c WHERE c.person_id = pe.id AND c.at >= $1)
    ORDER BY pe.id LIMIT $2";

/// What an erasure scrubs from stored webhook payloads: every spelling of the reader's address
/// and every name, nickname, place and address line they gave, as whole JSON strings.
const ERASED_TEXTS: &str = "
    SELECT email FROM payments WHERE LOWER(email) = $1
    UNION SELECT email FROM people WHERE email_key = $1
    UNION SELECT name FROM people WHERE email_key = $1 AND name IS NOT NULL
    UNION SELECT email FROM offline_gifts WHERE LOWER(email) = $1
    UNION SELECT name FROM offline_gifts WHERE LOWER(email) = $1 AND name IS NOT NULL
    UNION SELECT recipient FROM outbox WHERE LOWER(recipient) = $1
    UNION SELECT email FROM reader_links WHERE email_key = $1
    UNION SELECT d.name FROM donations d JOIN people pe ON pe.id = d.person_id WHERE pe.email_key = $1 AND d.name IS NOT NULL
    UNION SELECT d.display_name FROM donations d JOIN people pe ON pe.id = d.person_id
          WHERE pe.email_key = $1 AND d.display_name IS NOT NULL
    UNION SELECT d.place FROM donations d JOIN people pe ON pe.id = d.person_id WHERE pe.email_key = $1 AND d.place IS NOT NULL
    UNION SELECT email FROM share_applications WHERE LOWER(email) = $1
    UNION SELECT name FROM share_applications WHERE LOWER(email) = $1
    UNION SELECT address_line1 FROM share_applications WHERE LOWER(email) = $1
    UNION SELECT address_line2 FROM share_applications WHERE LOWER(email) = $1 AND address_line2 IS NOT NULL
    UNION SELECT town FROM share_applications WHERE LOWER(email) = $1
    UNION SELECT postcode FROM share_applications WHERE LOWER(email) = $1";

reader_accounts!(sqlx::Sqlite, begin_write: "BEGIN IMMEDIATE", for_update: "");
reader_accounts!(sqlx::Postgres, begin_write: "BEGIN", for_update: " FOR UPDATE");
