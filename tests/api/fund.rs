//! The fighting fund's figures, as readers and other sites read them.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use coopfund::domain::{GiftEntry, GiftMethod, GiftReference, OfflineGift, Pence};
use coopfund::store::{self, Actor};
use serde_json::json;

use crate::helpers::{Engine, NOW, TestApp, TestDb, ok};
use crate::on_both_engines;

on_both_engines!(
    the_seeded_fund_shows_exact_figures,
    figures_are_cached_with_an_etag_and_shared_across_origins,
    unknown_campaigns_are_a_json_404,
    the_monthly_fund_rolls_over_by_itself,
    the_roll_over_creates_one_campaign_however_many_instances_run_it,
    concurrent_and_repeated_bookings_count_once,
    health_and_readiness,
);

async fn the_seeded_fund_shows_exact_figures(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    for (amount, method) in [("9000", "cheque"), ("100.00", "phone"), ("£5.50", "cash")] {
        ok(app.cli(&[
            "gift",
            "add",
            "--campaign",
            "fighting-fund-2026-11",
            "--amount",
            amount,
            "--method",
            method,
            "--date",
            "2026-11-12",
        ]));
    }
    let current = app.current_when(|c| c["gifts"] == 3).await;
    assert_eq!(
        current,
        json!({
            "slug": "fighting-fund-2026-11",
            "title": "Fighting fund",
            "currency": "GBP",
            "target_pence": 1_800_000,
            "raised_pence": 910_550,
            "remaining_pence": 889_450,
            "target": "£18,000",
            "raised": "£9,105",
            "remaining": "£8,895",
            "starts_on": "2026-11-01",
            "ends_on": "2026-11-30",
            "days_remaining": 13,
            "status": "open",
            "target_reached": false,
            "gifts": 3,
            "summary": "£9,105 raised of £18,000, 13 days remaining",
            "updated_at": "2026-11-17T12:00:00Z",
        })
    );
    assert_eq!(app.get_json("/api/campaigns/fighting-fund-2026-11").await, current);

    let page = app.get("/").await.text().await.expect("home page");
    for shown in [
        "You've raised <strong>£9,105</strong>",
        "We need <strong>£8,895</strong>",
        "<strong>13</strong> days remaining",
        "Donate today",
    ] {
        assert!(page.contains(shown), "home page lacks {shown:?}");
    }
    app.running.stop().await;
}

async fn figures_are_cached_with_an_etag_and_shared_across_origins(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let first = app
        .http
        .get(app.url("/api/campaigns/current"))
        .header("Origin", "https://paper.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(first.status(), 200);
    let header = |name: &str| first.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("cache-control").as_deref(), Some("public, max-age=5"));
    assert_eq!(header("access-control-allow-origin").as_deref(), Some("*"));
    let etag = header("etag").expect("an ETag");

    let again =
        app.http.get(app.url("/api/campaigns/current")).header("If-None-Match", &etag).send().await.expect("GET");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers().get("etag").and_then(|v| v.to_str().ok()), Some(etag.as_str()));

    ok(app.cli(&[
        "gift",
        "add",
        "--campaign",
        "fighting-fund-2026-11",
        "--amount",
        "25",
        "--method",
        "cheque",
        "--date",
        "2026-11-17",
    ]));
    app.current_when(|c| c["raised_pence"] == 2500).await;
    let changed =
        app.http.get(app.url("/api/campaigns/current")).header("If-None-Match", &etag).send().await.expect("GET");
    assert_eq!(changed.status(), 200, "a changed figure must not answer 304");
    app.running.stop().await;
}

async fn unknown_campaigns_are_a_json_404(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let response = app.get("/api/campaigns/no-such-fund").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.expect("JSON error");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("no-such-fund")), "{body}");
    app.running.stop().await;
}

async fn the_monthly_fund_rolls_over_by_itself(engine: Engine) {
    // The service last ran in October; it wakes in November with no command and no new campaign.
    let db = TestDb::new(engine).await;
    let october = TestApp::spawn_on(db, "2026-10-31T12:00:00Z").await;
    assert_eq!(october.get_json("/api/campaigns/current").await["slug"], "fighting-fund-2026-10");
    ok(october.cli(&[
        "gift",
        "add",
        "--campaign",
        "fighting-fund-2026-10",
        "--amount",
        "40",
        "--method",
        "cash",
        "--date",
        "2026-10-31",
    ]));
    october.running.stop().await;

    // 1 November 00:30 in London (GMT) is a new month there.
    let november = TestApp::spawn_on(october.db, "2026-11-01T00:30:00Z").await;
    let current = november.get_json("/api/campaigns/current").await;
    assert_eq!(current["slug"], "fighting-fund-2026-11");
    assert_eq!((current["raised_pence"].clone(), current["target_pence"].clone()), (json!(0), json!(1_800_000)));
    assert_eq!((current["days_remaining"].clone(), current["status"].clone()), (json!(29), json!("open")));
    let october_now = november.get_json("/api/campaigns/fighting-fund-2026-10").await;
    assert_eq!(october_now["status"], "closed");
    assert_eq!(october_now["summary"], "£40 raised of £18,000, closed");
    november.running.stop().await;
}

async fn the_roll_over_creates_one_campaign_however_many_instances_run_it(engine: Engine) {
    let db = TestDb::new(engine).await;
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(store::open(&db.url).await.expect("open"));
    }
    let now: DateTime<Utc> = "2026-10-10T12:00:00Z".parse().expect("instant");
    instances[0].seed_demo_campaign(date("2026-10-10"), now).await.expect("seed");
    let later: DateTime<Utc> = "2026-12-01T00:00:01Z".parse().expect("instant");
    let results =
        futures::future::join_all(instances.iter().map(|store| store.roll_over_monthly(date("2026-12-01"), later)))
            .await;
    let created: Vec<String> = results.into_iter().flat_map(|r| r.expect("roll-over")).collect();
    assert_eq!(created, vec!["fighting-fund-2026-12".to_owned()], "exactly one instance creates December");
    let slugs: Vec<String> = instances[1].campaigns().await.expect("list").into_iter().map(|c| c.slug).collect();
    assert_eq!(slugs, ["fighting-fund-2026-12", "fighting-fund-2026-10"], "November was never open, so it is not made");
}

async fn concurrent_and_repeated_bookings_count_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = store::open(&db.url).await.expect("open");
    let now: DateTime<Utc> = NOW.parse().expect("instant");
    store.seed_demo_campaign(date("2026-11-17"), now).await.expect("seed");
    let campaign = store.campaign("fighting-fund-2026-11").await.expect("read").expect("campaign");
    // 40 cheques of £1.25, each entered three times, all at once: the cheque number is the
    // ledger's source id, so each is booked once however the entries race.
    let tasks = (0..120).map(|i| {
        let store = Arc::clone(&store);
        let entry = GiftEntry {
            amount: Pence(125),
            method: GiftMethod::Cheque,
            received_on: date("2026-11-17"),
            email: None,
            name: None,
            note: None,
            reference: GiftReference::typed(GiftMethod::Cheque, &format!("{}", 100_000 + i % 40)).expect("reference"),
        };
        let gift = OfflineGift::new(&campaign, entry, date("2026-11-17")).expect("a gift");
        tokio::spawn(async move {
            store.record_offline_gift(&gift, now, &Actor::command_line(), now).await.expect("record").new
        })
    });
    let booked = futures::future::join_all(tasks).await.into_iter().filter(|r| *r.as_ref().expect("task")).count();
    assert_eq!(booked, 40);
    let campaign = store.campaign("fighting-fund-2026-11").await.expect("read").expect("campaign");
    assert_eq!((campaign.raised, campaign.gifts), (Pence(5000), 40));
}

async fn health_and_readiness(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.running.stop().await;
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}
