//! Upgrades: a database the last release filled takes this release's migrations with its data intact.

use std::path::Path;

use chrono::NaiveDate;
use coopfund::domain::Pence;
use sqlx::migrate::Migrator;

use crate::helpers::{Engine, TestDb};
use crate::on_both_engines;

on_both_engines!(a_database_of_the_last_release_keeps_its_campaigns_and_ledger);

/// The migrations the last release ran: those before `0007_open_share_issues.sql`.
async fn last_release(engine: Engine, into: &Path) -> Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    });
    for entry in std::fs::read_dir(dir).expect("migrations") {
        let path = entry.expect("migration").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.as_str() < "0007" {
            std::fs::copy(&path, into.join(name)).expect("copy migration");
        }
    }
    Migrator::new(into).await.expect("the last release's migrations")
}

const FILLED: &str = "
    INSERT INTO campaigns (slug, title, kind, target_pence, starts_on, ends_on, created_at, updated_at)
    VALUES ('fund', 'Fund', 'donations', 100000, '2026-11-01', '2026-11-30', '2026-11-01 09:00:00+00:00',
            '2026-11-01 09:00:00+00:00');
    INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
    VALUES ((SELECT id FROM campaigns), 2500, 1, 'offline', 'gift-1', '2026-11-02 09:00:00+00:00', '2026-11-02 09:00:00+00:00');
    INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
    VALUES ((SELECT id FROM campaigns), 1, 2500, 1, '2026-11-02 09:00:00+00:00');
    INSERT INTO offline_gifts (campaign_id, amount_pence, method, received_on, email, name, created_at)
    VALUES ((SELECT id FROM campaigns), 2500, 'cheque', '2026-11-02', 'Old@Example.org', 'Old Giver',
            '2026-11-02 09:00:00+00:00');";

async fn a_database_of_the_last_release_keeps_its_campaigns_and_ledger(engine: Engine) {
    let db = TestDb::new(engine).await;
    let migrations = tempfile::tempdir().expect("temporary directory");
    let old = last_release(engine, migrations.path()).await;
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            old.run(&pool).await.expect("the last release's schema");
            sqlx::raw_sql(FILLED).execute(&pool).await.expect("its data");
            pool.close().await;
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("postgres");
            old.run(&pool).await.expect("the last release's schema");
            sqlx::raw_sql(FILLED).execute(&pool).await.expect("its data");
            pool.close().await;
        }
    }

    let store = coopfund::store::open(&db.url).await.expect("upgraded");
    let fund = store.campaign("fund").await.expect("read").expect("kept");
    let november_30 = NaiveDate::from_ymd_opt(2026, 11, 30);
    assert_eq!(
        (fund.raised, fund.gifts, fund.target, fund.ends_on),
        (Pence(2500), 1, Some(Pence(100_000)), november_30)
    );
    // An offline gift keeps its reference, and its giver becomes a person (0011).
    let (gifts, _) = store.search_gifts(&Default::default(), 10, 0).await.expect("gifts");
    assert_eq!(
        gifts.iter().map(|g| (g.reference.as_str(), g.method.as_str())).collect::<Vec<_>>(),
        [("gift-1", "cheque")]
    );
    let people = store.people(None, 10).await.expect("people");
    assert_eq!(
        people.iter().map(|p| (p.email.as_str(), p.given)).collect::<Vec<_>>(),
        [("Old@Example.org", Pence(2500))]
    );
    if engine == Engine::Sqlite {
        let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
        let broken: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check").fetch_all(&pool).await.expect("check");
        assert!(broken.is_empty(), "every reference still found: {broken:?}");
    }
}
