//! The scale-out engine: many instances of the service on one PostgreSQL database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};

use super::sql::{campaign_columns, campaign_for_day_order, shared_store};

/// Statements slower than this are logged, at info: load is not a fault.
const SLOW: Duration = Duration::from_secs(1);

// A sequence hands out receipt numbers without a row lock held until commit.
shared_store!(
    Postgres,
    begin_write: "BEGIN",
    for_update: " FOR UPDATE",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    next_receipt: "SELECT nextval($1::regclass)"
);

pub(super) async fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let options = PgConnectOptions::from_str(url)?
        .log_slow_statements(log::LevelFilter::Info, SLOW)
        // No statement may hold a request, or a row lock, for longer than this.
        .options([("statement_timeout", "10s")]);
    let pool =
        PgPoolOptions::new().max_connections(32).acquire_timeout(Duration::from_secs(5)).connect_with(options).await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    Ok(SqlStore { pool })
}
