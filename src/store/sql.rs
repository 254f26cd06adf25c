//! The SQL both engines share, written once and instantiated for each by `shared_store!`.
//!
//! Both engines accept the same statements here (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`), so the only difference passed in is how a write transaction begins.

use sqlx::{Database, Pool};

pub struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
}

macro_rules! campaign_columns {
    () => {
        "slug, title, target_pence, starts_on, ends_on, monthly_series, raised_pence, gifts, updated_at"
    };
}

macro_rules! shared_store {
    ($engine:ty, begin_write: $begin:literal) => {
        use chrono::{DateTime, NaiveDate, Utc};
        use sqlx::Transaction;

        use $crate::domain::{Campaign, NewCampaign, OfflineGift, Pence};
        use $crate::store::sql::SqlStore;
        use $crate::store::{CampaignRow, LedgerEntry, Store, StoreError, is_unique_violation};

        impl SqlStore<$engine> {
            async fn insert_campaign_if_new(&self, c: &NewCampaign, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let inserted: Option<String> = sqlx::query_scalar(
                    "INSERT INTO campaigns (slug, title, kind, target_pence, starts_on, ends_on, monthly_series, created_at, updated_at)
                     VALUES ($1, $2, 'donations', $3, $4, $5, $6, $7, $7)
                     ON CONFLICT DO NOTHING RETURNING slug",
                )
                .bind(&c.slug)
                .bind(&c.title)
                .bind(c.target.0)
                .bind(c.starts_on)
                .bind(c.ends_on)
                .bind(&c.monthly_series)
                .bind(now)
                .fetch_optional(&self.pool)
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
                if inserted.is_none() {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE campaigns SET raised_pence = raised_pence + $1, gifts = gifts + $2, updated_at = $3
                     WHERE id = $4",
                )
                .bind(entry.amount.0)
                .bind(entry.gifts)
                .bind(now)
                .bind(campaign_id)
                .execute(&mut **tx)
                .await?;
                Ok(true)
            }
        }

        #[async_trait::async_trait]
        impl Store for SqlStore<$engine> {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_campaign(&self, c: &NewCampaign, now: DateTime<Utc>) -> Result<Campaign, StoreError> {
                sqlx::query_as::<_, CampaignRow>(concat!(
                    "INSERT INTO campaigns (slug, title, kind, target_pence, starts_on, ends_on, monthly_series, created_at, updated_at)
                     VALUES ($1, $2, 'donations', $3, $4, $5, $6, $7, $7) RETURNING ",
                    campaign_columns!()
                ))
                .bind(&c.slug)
                .bind(&c.title)
                .bind(c.target.0)
                .bind(c.starts_on)
                .bind(c.ends_on)
                .bind(&c.monthly_series)
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map(Campaign::from)
                .map_err(|e| {
                    if is_unique_violation(&e) { StoreError::DuplicateSlug(c.slug.clone()) } else { e.into() }
                })
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
                    " FROM campaigns WHERE kind = 'donations'
                      ORDER BY CASE WHEN starts_on <= $1 AND ends_on >= $1 THEN 0 ELSE 1 END, starts_on DESC, id DESC
                      LIMIT 1"
                ))
                .bind(today)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Campaign::from))
            }

            async fn roll_over_monthly(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
                let latest: Vec<(String, String, i64, NaiveDate)> = sqlx::query_as(
                    "SELECT c.monthly_series, c.title, c.target_pence, c.ends_on FROM campaigns c
                     WHERE c.monthly_series IS NOT NULL
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
                    if self.insert_campaign_if_new(&next, now).await? {
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
                self.insert_campaign_if_new(&demo, now).await
            }

            async fn record_offline_gift(
                &self,
                gift: &OfflineGift,
                occurred_at: DateTime<Utc>,
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
                    campaign_slug: gift.campaign.clone(),
                    amount: gift.amount,
                    gifts: 1,
                    source: "offline",
                    source_id: format!("gift-{gift_id}"),
                    occurred_at,
                };
                Self::book_in(&mut tx, campaign_id, &entry, now).await?;
                tx.commit().await?;
                Ok(entry.source_id)
            }

            async fn book(&self, entry: &LedgerEntry, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let campaign_id = Self::campaign_id(&mut tx, &entry.campaign_slug).await?;
                let booked = Self::book_in(&mut tx, campaign_id, entry, now).await?;
                tx.commit().await?;
                Ok(booked)
            }
        }
    };
}

pub(crate) use campaign_columns;
pub(crate) use shared_store;
