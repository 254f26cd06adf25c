//! The scale-out engine: many instances of the service on one PostgreSQL database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};

use super::sql::{campaign_columns, campaign_for_day_order, shared_store};
use super::staff_sql::{gift_search, staff_area};
use super::{ChangeFeed, ChangeNotices};

/// The channel on which instances announce that the fund's figures changed.
const FUND_CHANNEL: &str = "coopfund_fund";

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
staff_area!(Postgres);

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

#[async_trait]
impl ChangeNotices for SqlStore<Postgres> {
    async fn announce_fund_changed(&self, from: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(FUND_CHANNEL).bind(from).execute(&self.pool).await?;
        Ok(())
    }

    async fn listen_for_fund_changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(FUND_CHANNEL).await?;
        Ok(Some(Box::new(Listening(listener))))
    }
}

struct Listening(PgListener);

#[async_trait]
impl ChangeFeed for Listening {
    async fn next(&mut self) -> Result<Option<String>, StoreError> {
        // `try_recv` says `None` when the connection dropped: notifications sent meanwhile are gone.
        Ok(self.0.try_recv().await?.map(|notice| notice.payload().to_owned()))
    }
}
