//! The staff area's SQL, written once for both engines and instantiated by `staff_area!`.

/// The gifts list's query: every ledger row that is a new gift to a fund, with who gave it
/// and how, filtered by whichever of `$1`–`$6` are set.
macro_rules! gift_search {
    () => {
        "SELECT l.source_id AS reference, l.occurred_at, l.amount_pence AS amount,
                COALESCE(p.refunded_pence, 0) AS refunded, c.slug AS campaign,
                COALESCE(o.method, 'online') AS method, COALESCE(o.email, p.email) AS email,
                COALESCE(o.name, d.name) AS name, o.note, COUNT(*) OVER () AS total
         FROM ledger l
         JOIN campaigns c ON c.id = l.campaign_id
         LEFT JOIN payments p ON l.source = 'stripe' AND p.payment = l.source_id
         LEFT JOIN donations d ON d.id = p.donation_id
         LEFT JOIN offline_gifts o ON l.source = 'offline' AND l.source_id = o.source_id
         WHERE l.gifts = 1 AND c.kind = 'donations'
           AND ($1 IS NULL OR LOWER(COALESCE(o.email, p.email, '')) LIKE $1 ESCAPE '\\'
                           OR LOWER(COALESCE(o.name, d.name, '')) LIKE $1 ESCAPE '\\')
           AND ($2 IS NULL OR l.amount_pence = $2)
           AND ($3 IS NULL OR l.occurred_at >= $3)
           AND ($4 IS NULL OR l.occurred_at < $4)
           AND ($5 IS NULL OR COALESCE(o.method, 'online') = $5)
           AND ($6 IS NULL OR c.slug = $6)
         ORDER BY l.occurred_at DESC, l.id DESC
         LIMIT $7 OFFSET $8"
    };
}

/// `text` with LIKE's `%`, `_` and escape character made literal (`ESCAPE '\\'`).
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A case-insensitive LIKE pattern (against a lower-cased column) that finds `text` anywhere.
pub fn contains_pattern(text: &str) -> String {
    format!("%{}%", escape_like(&text.to_lowercase()))
}

/// The ledger ids booked after a payment (`{payment}:refunded:…`, `{payment}:{dispute}:…`).
pub fn later_movements_pattern(payment: &str) -> String {
    format!("{}:%", escape_like(payment))
}

macro_rules! staff_area {
    ($engine:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::StaffArea for SqlStore<$engine> {
            async fn add_staff(
                &self,
                email: &EmailAddress,
                password_hash: &str,
                role: Role,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
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

            async fn staff_by_id(&self, id: i64) -> Result<Option<$crate::store::StaffAccount>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, role, session_epoch FROM staff WHERE id = $1 AND removed_at IS NULL",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn staff_list(&self) -> Result<Vec<StaffRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, role, created_at FROM staff WHERE removed_at IS NULL ORDER BY email_key",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn change_staff(
                &self,
                id: i64,
                role: Option<Role>,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                // Either change ends the account's sessions: they carry the epoch they began under.
                let done = match role {
                    Some(role) => {
                        sqlx::query(
                            "UPDATE staff SET role = $2, session_epoch = session_epoch + 1
                             WHERE id = $1 AND removed_at IS NULL",
                        )
                            .bind(id)
                            .bind(role.as_str())
                            .execute(&mut *tx)
                            .await?
                    }
                    None => {
                        sqlx::query(
                            "UPDATE staff SET removed_at = $2, session_epoch = session_epoch + 1
                             WHERE id = $1 AND removed_at IS NULL",
                        )
                            .bind(id)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?
                    }
                };
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                let (action, detail) = match role {
                    Some(role) => ("staff.role", format!("staff #{id} is now {}", role.as_str())),
                    None => ("staff.remove", format!("staff #{id} removed")),
                };
                Self::audit_in(&mut tx, actor, action, &detail, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn session(
                &self,
                area: $crate::store::SessionArea,
                id: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT data FROM sessions WHERE area = $1 AND id = $2 AND expires_at > $3")
                    .bind(area.as_str())
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn save_session(
                &self,
                area: $crate::store::SessionArea,
                id: &str,
                data: &str,
                expires_at: DateTime<Utc>,
                only_new: bool,
            ) -> Result<bool, StoreError> {
                let statement = if only_new {
                    "INSERT INTO sessions (area, id, data, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (area, id) DO NOTHING"
                } else {
                    "INSERT INTO sessions (area, id, data, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (area, id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at"
                };
                let done = sqlx::query(statement)
                    .bind(area.as_str())
                    .bind(id)
                    .bind(data)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_session(&self, area: $crate::store::SessionArea, id: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sessions WHERE area = $1 AND id = $2")
                    .bind(area.as_str())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn count_attempt(
                &self,
                limits: &[$crate::store::AttemptLimit<'_>],
                since: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> Result<Option<$crate::store::CountedAttempt>, StoreError> {
                let mut keys: Vec<_> = limits.iter().collect();
                // Always in the same order, so that two attempts never wait for each other's keys.
                keys.sort_by_key(|l| l.key);
                let mut tx = self.begin_write().await?;
                for limit in &keys {
                    // Holds the key's row until commit: another attempt on it waits here, then
                    // counts this one.
                    sqlx::query(
                        "INSERT INTO attempt_keys (key, last_at) VALUES ($1, $2)
                         ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at",
                    )
                    .bind(limit.key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let made: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE key = $1 AND at >= $2")
                        .bind(limit.key)
                        .bind(since)
                        .fetch_one(&mut *tx)
                        .await?;
                    if made >= limit.most {
                        return Ok(None);
                    }
                }
                let mut ids = Vec::with_capacity(keys.len());
                for limit in &keys {
                    let id: i64 = sqlx::query_scalar("INSERT INTO attempts (key, at) VALUES ($1, $2) RETURNING id")
                        .bind(limit.key)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                    ids.push(id);
                }
                tx.commit().await?;
                Ok(Some($crate::store::CountedAttempt { ids }))
            }

            async fn forgive_attempt(&self, attempt: &$crate::store::CountedAttempt) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                for id in &attempt.ids {
                    sqlx::query("DELETE FROM attempts WHERE id = $1").bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn purge_expired(&self, now: DateTime<Utc>, attempts_before: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM attempts WHERE at < $1").bind(attempts_before).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM attempt_keys WHERE last_at < $1")
                    .bind(attempts_before)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn shared_secret(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
                sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(fresh)
                    .execute(&self.pool)
                    .await?;
                Ok(sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1").bind(name).fetch_one(&self.pool).await?)
            }

            async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
                Ok(sqlx::query_as("SELECT actor, action, detail, at FROM audit_log ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn search_gifts(
                &self,
                filter: &GiftFilter,
                limit: i64,
                offset: i64,
            ) -> Result<(Vec<GiftRow>, i64), StoreError> {
                #[derive(sqlx::FromRow)]
                struct Counted {
                    #[sqlx(flatten)]
                    gift: GiftRow,
                    total: i64,
                }
                let rows: Vec<Counted> = sqlx::query_as(gift_search!())
                    .bind(filter.text.as_deref().map($crate::store::staff_sql::contains_pattern))
                    .bind(filter.amount.map(|a| a.0))
                    .bind(filter.from)
                    .bind(filter.until)
                    .bind(filter.method.as_deref())
                    .bind(filter.campaign.as_deref())
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let total = rows.first().map_or(0, |r| r.total);
                Ok((rows.into_iter().map(|r| r.gift).collect(), total))
            }

            async fn gift_history(&self, reference: &str) -> Result<Vec<LedgerRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT source_id, amount_pence AS amount, gifts, occurred_at, recorded_at FROM ledger
                     WHERE source_id = $1 OR source_id LIKE $2 ESCAPE '\\' ORDER BY id",
                )
                .bind(reference)
                .bind($crate::store::staff_sql::later_movements_pattern(reference))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn emails_about(&self, reference: &str) -> Result<Vec<EmailRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, recipient, status, attempts, last_error, created_at, sent_at, next_attempt_at, payload
                     FROM outbox WHERE reference = $1 ORDER BY id",
                )
                .bind(reference)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn gifts_since(&self, since: DateTime<Utc>) -> Result<(i64, Pence), StoreError> {
                let (count, sum): (i64, i64) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(l.gifts), 0) AS BIGINT), CAST(COALESCE(SUM(l.amount_pence), 0) AS BIGINT)
                     FROM ledger l JOIN campaigns c ON c.id = l.campaign_id
                     WHERE c.kind = 'donations' AND l.occurred_at >= $1",
                )
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                Ok((count, Pence(sum)))
            }

            async fn campaign_movements(&self, slug: &str) -> Result<Vec<(DateTime<Utc>, Pence)>, StoreError> {
                let rows: Vec<(DateTime<Utc>, i64)> = sqlx::query_as(
                    "SELECT l.occurred_at, l.amount_pence FROM ledger l JOIN campaigns c ON c.id = l.campaign_id
                     WHERE c.slug = $1 ORDER BY l.occurred_at",
                )
                .bind(slug)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(at, pence)| (at, Pence(pence))).collect())
            }

            async fn people(&self, text: Option<&str>, limit: i64) -> Result<Vec<PersonRow>, StoreError> {
                // Only people with money or membership: an unpaid form shows no one (SPEC §8).
                Ok(sqlx::query_as(
                    "SELECT * FROM (
                       SELECT pe.id, pe.email, pe.name,
                              (SELECT COUNT(*) FROM payments p LEFT JOIN donations d ON d.id = p.donation_id
                               WHERE LOWER(p.email) = pe.email_key OR d.person_id = pe.id)
                                + (SELECT COUNT(*) FROM offline_gifts o WHERE o.person_id = pe.id) AS gifts,
                              CAST((SELECT COALESCE(SUM(p.amount_pence - p.refunded_pence), 0)
                                    FROM payments p LEFT JOIN donations d ON d.id = p.donation_id
                                    WHERE LOWER(p.email) = pe.email_key OR d.person_id = pe.id)
                                + (SELECT COALESCE(SUM(o.amount_pence), 0) FROM offline_gifts o
                                   WHERE o.person_id = pe.id) AS BIGINT) AS given,
                              (SELECT s.status FROM supporters s
                               WHERE s.person_id = pe.id ORDER BY s.started_at DESC LIMIT 1) AS supporter,
                              m.member_number, m.shares
                       FROM people pe LEFT JOIN members m ON m.person_id = pe.id
                       WHERE $1 IS NULL OR pe.email_key LIKE $1 ESCAPE '\\'
                          OR LOWER(COALESCE(pe.name, '')) LIKE $1 ESCAPE '\\'
                     ) found
                     WHERE gifts > 0 OR member_number IS NOT NULL OR supporter IS NOT NULL
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(text.map($crate::store::staff_sql::contains_pattern))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn supporters(&self) -> Result<Vec<SupporterRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT s.subscription, pe.email, COALESCE(d.name, pe.name) AS name, s.amount_pence AS amount,
                            s.status, s.started_at, CASE WHEN s.status = 'paused' THEN s.paused_until END AS paused_until,
                            s.cancel_at_period_end
                     FROM supporters s LEFT JOIN donations d ON d.id = s.donation_id
                     LEFT JOIN people pe ON pe.id = s.person_id
                     ORDER BY s.started_at DESC",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn supporter_totals(&self) -> Result<SupporterTotals, StoreError> {
                let (active, monthly): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(amount_pence), 0) AS BIGINT) FROM supporters WHERE status = 'active'",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(SupporterTotals { active, monthly: Pence(monthly) })
            }

            async fn held_applications(&self) -> Result<Vec<HeldApplication>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, name, email, amount_pence AS amount, note, payment FROM share_applications
                     WHERE status = 'held' ORDER BY paid_at",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn events(&self, filter: &$crate::store::EventFilter, limit: i64) -> Result<Vec<EventRow>, StoreError> {
                let status = match &filter.status {
                    $crate::store::EventStatuses::ToLookAt => None,
                    $crate::store::EventStatuses::All => Some("all"),
                    $crate::store::EventStatuses::Only(status) => Some(status.as_str()),
                };
                Ok(sqlx::query_as(
                    "SELECT id, type AS kind, status, note, waiting_for, created, received_at, payload FROM stripe_events
                     WHERE (CASE WHEN $1 IS NULL THEN status IN ('parked', 'unmatched', 'unparsed')
                                 ELSE $1 = 'all' OR status = $1 END)
                       AND ($2 IS NULL OR LOWER(id) LIKE $2 ESCAPE '\\' OR LOWER(type) LIKE $2 ESCAPE '\\')
                     ORDER BY received_at DESC, id LIMIT $3",
                )
                .bind(status)
                .bind(filter.text.as_deref().map($crate::store::staff_sql::contains_pattern))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn stripe_event(&self, id: &str) -> Result<Option<EventRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, type AS kind, status, note, waiting_for, created, received_at, payload
                     FROM stripe_events WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn unsent_emails(&self, limit: i64) -> Result<Vec<EmailRow>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, recipient, status, attempts, last_error, created_at, sent_at, next_attempt_at, payload
                     FROM outbox WHERE status IN ('pending', 'failed') ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn retry_email(&self, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'pending', next_attempt_at = NULL, claimed_until = NULL, claimed_by = NULL,
                                       attempts = 0,
                                       first_attempt_at = NULL
                     WHERE id = $1 AND status = 'failed'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::audit_in(&mut tx, actor, "email.retry", &format!("email #{id}"), now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn audit(&self, actor: &Actor, action: &str, detail: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::audit_in(&mut tx, actor, action, detail, now).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use gift_search;
pub(crate) use staff_area;
