//! The outbox's claims: only the worker holding an email's claim records how it went, and an
//! email that can never be built fails at once, for staff to see.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use coopfund::config::Config;
use coopfund::mail::Transport;
use coopfund::mail::outbox::Outbox;
use coopfund::store::{Actor, Delivery, Store, Tried};
use sqlx::Connection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Engine, NOW, TestDb};
use crate::on_both_engines;

on_both_engines!(a_lapsed_claim_cannot_mark_an_email_another_worker_holds, an_email_that_cannot_be_built_fails_at_once);

/// The store of `db` with this month's fund and one receipted cheque in the outbox.
async fn store_with_one_email(db: &TestDb) -> (Arc<dyn Store>, DateTime<Utc>) {
    let store = coopfund::store::open(&db.url).await.expect("open");
    let now: DateTime<Utc> = NOW.parse().expect("instant");
    store.seed_demo_campaign("2026-11-17".parse().expect("date"), now).await.expect("seed");
    let cheque = crate::receipts::cheque(2500, "reader@example.org");
    store.record_offline_gift(&cheque, now, &Actor::command_line(), now).await.expect("record");
    (store, now)
}

/// Runs one statement with one text parameter on the test database, as only a test may.
pub async fn execute(db: &TestDb, sql: &str, text: &str) {
    if db.url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
        sqlx::query(sql).bind(text).execute(&mut connection).await.expect("statement");
    } else {
        let mut connection = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        sqlx::query(sql).bind(text).execute(&mut connection).await.expect("statement");
    }
}

/// One number from the test database, such as a count of rows.
pub async fn scalar(db: &TestDb, sql: &str) -> i64 {
    if db.url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
        sqlx::query_scalar(sql).fetch_one(&mut connection).await.expect("query")
    } else {
        let mut connection = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        sqlx::query_scalar(sql).fetch_one(&mut connection).await.expect("query")
    }
}

async fn a_lapsed_claim_cannot_mark_an_email_another_worker_holds(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, now) = store_with_one_email(&db).await;
    let minutes = chrono::Duration::minutes;
    let first = store.claim_emails(now, now + minutes(2), 10, "worker-a").await.expect("claim");
    assert_eq!(first.len(), 1);
    // Worker A stalls past its claim; worker B takes the email over.
    let later = now + minutes(3);
    let second = store.claim_emails(later, later + minutes(2), 10, "worker-b").await.expect("claim");
    assert_eq!(second.len(), 1, "a lapsed claim is free");
    let id = first[0].id;
    let failed = Delivery::Failed { retry_at: None, error: "A's stale failure".to_owned() };
    store.emails_tried("worker-a", &[Tried { id, delivery: failed }]).await.expect("mark");
    store.release_email(id, "worker-a").await.expect("release");
    let shown = store.unsent_emails(10).await.expect("emails");
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].status.as_str(), shown[0].last_error.as_deref()), ("pending", None), "A changed nothing");
    assert!(
        store.claim_emails(later, later + minutes(2), 10, "worker-c").await.expect("claim").is_empty(),
        "B holds it"
    );
    let sent = Delivery::Sent { at: later };
    store.emails_tried("worker-b", &[Tried { id, delivery: sent }]).await.expect("mark");
    assert_eq!(store.outbox_counts().await.expect("counts").sent, 1, "the holder's word counts");
}

async fn an_email_that_cannot_be_built_fails_at_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (store, _) = store_with_one_email(&db).await;
    // An address with CR/LF, as a signed event could carry one.
    execute(&db, "UPDATE outbox SET recipient = $1", "reader@example.org\r\nBcc: all@example.org").await;
    let mail = tempfile::tempdir().expect("mail directory");
    let mail_dir = mail.path().display().to_string();
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(db.url.clone()),
        "MAIL_DIR" => Some(mail_dir.clone()),
        _ => None,
    })
    .expect("config");
    let transport = Transport::from_config(&config).expect("transport");
    let outbox = Outbox::new(store.clone(), transport, Arc::new(config), Arc::new(Notify::new()));
    assert_eq!(outbox.send_due(&CancellationToken::new()).await.expect("send"), 1);
    let shown = store.unsent_emails(10).await.expect("emails");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].status, "failed", "not retried for a day: {shown:?}");
    assert!(shown[0].last_error.as_deref().is_some_and(|e| e.contains("cannot build")), "{shown:?}");
    assert_eq!(std::fs::read_dir(mail.path()).expect("dir").count(), 0, "nothing sent");
}
