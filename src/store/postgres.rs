//! The scale-out engine: many instances of the service on one PostgreSQL database.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::PgPoolOptions;

use super::sql::{campaign_columns, campaign_for_day_order, shared_store};

shared_store!(Postgres, begin_write: "BEGIN", for_update: " FOR UPDATE", skip_locked: " FOR UPDATE SKIP LOCKED");

pub(super) async fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let pool = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    Ok(SqlStore { pool })
}
