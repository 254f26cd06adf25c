//! The retention job (SPEC §10, issue 17): givers with no activity for `RETENTION_YEARS` are
//! pseudonymised as an erasure is, former members leave the register 10 years after they
//! ceased, and nothing else changes: members, active supporters, figures, receipts.

use chrono::{DateTime, Months, Utc};
use coopfund::domain::PostalAddress;
use coopfund::jobs::retention::{Retained, run_once};
use coopfund::store::Actor;

use crate::account::find_anywhere;
use crate::helpers::{Engine, NOW, TestApp, TestDb, ok};
use crate::on_both_engines;
use crate::outbox_claims::{execute, scalar};

on_both_engines!(
    the_inactive_are_pseudonymised_and_old_former_members_leave_the_register,
    two_instances_running_the_job_at_once_erase_each_person_once,
);

fn years_on(years: u32) -> DateTime<Utc> {
    let now: DateTime<Utc> = NOW.parse().expect("instant");
    now.checked_add_months(Months::new(12 * years)).expect("a later date")
}

async fn join(app: &TestApp, name: &str, email: &str) {
    let form = [
        ("name", name),
        ("address_line1", "1 Mill Lane"),
        ("town", "Leeds"),
        ("postcode", "LS1 4AP"),
        ("email", email),
        ("amount", "50"),
        ("declaration", "yes"),
    ];
    let applied = app.http.post(app.url("/join")).form(&form).send().await.expect("join");
    let checkout = applied.headers()["location"].to_str().expect("to the payment page").to_owned();
    assert_eq!(app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay").status(), 303);
}

async fn give_monthly(app: &TestApp, email: &str) {
    let form = [("amount", "10"), ("frequency", "monthly"), ("email", email)];
    let answered = app.http.post(app.url("/donate")).form(&form).send().await.expect("donate");
    let checkout = answered.headers()["location"].to_str().expect("to the payment page").to_owned();
    assert_eq!(app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay").status(), 303);
}

async fn the_inactive_are_pseudonymised_and_old_former_members_leave_the_register(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let cheque = ["gift", "add", "--campaign", "fighting-fund-2026-11", "--amount", "40", "--method", "cheque"];
    let giver = ["--date", "2026-11-12", "--email", "old.giver@example.org", "--name", "Olive Oldgiver"];
    ok(app.cli(&[&cheque[..], &giver[..]].concat()));
    give_monthly(&app, "monthly@example.org").await;
    join(&app, "Ada Lovelace", "ada@example.org").await;
    join(&app, "Bob Formerly", "bob.former@example.org").await;
    // He changed his name and address before he ceased (issue 17's review, item 3: the audit
    // log's line of what changed must not outlive his register entry).
    let moved = PostalAddress {
        line1: "9 Secret Lane".to_owned(),
        line2: None,
        town: "Hebden".to_owned(),
        postcode: "HX7 1AA".to_owned(),
    };
    let now: DateTime<Utc> = NOW.parse().expect("instant");
    let store = app.running.state.store.clone();
    store.change_member_details("bob.former@example.org", "Robert Formerly", &moved, now).await.expect("change");
    // Bob's shares were all refunded in January 2020: he ceased to be a member then.
    execute(&app.db, "UPDATE members SET ceased_on = '2020-01-01' WHERE email = $1", "bob.former@example.org").await;
    // A Payment Link's checkout names a giver no person of ours leads to: kept for staff, unmatched.
    let link = coopfund::domain::ReceivedEvent {
        id: "evt_payment_link".to_owned(),
        kind: "checkout.session.completed".to_owned(),
        created: now,
        payload: r#"{"customer_details":{"email":"pat.link@example.org","name":"Pat Linkgiver"}}"#.to_owned(),
    };
    store.record_unparsed_event(&link, "not started by coopfund", now).await.expect("kept");
    let raised = app.raised().await;
    let payments_before = store.counted_payments(years_on(0) - chrono::Duration::days(30)).await.expect("payments");
    let receipts_before = scalar(&app.db, "SELECT COUNT(*) FROM outbox WHERE receipt_number IS NOT NULL").await;
    let zone = chrono_tz::Europe::London;

    // Six years on, no one has been inactive for seven; Bob ceased more than ten years before.
    let done = run_once(store.as_ref(), 7, zone, years_on(6)).await.expect("retention");
    assert_eq!((done.erased, done.removed.len()), (0, 1), "{done:?}");
    let register = ok(app.cli(&["register", "export"]));
    assert!(register.contains("Ada Lovelace") && !register.contains("Bob"), "{register}");
    let in_register = "SELECT COUNT(*) FROM members WHERE LOWER(name) LIKE '%bob%' OR email LIKE 'bob%'";
    assert_eq!(scalar(&app.db, in_register).await, 0, "Bob's entry holds nothing of his");
    let in_audit = "SELECT COUNT(*) FROM audit_log WHERE LOWER(detail) LIKE '%formerly%'
                    OR LOWER(detail) LIKE '%mill lane%' OR LOWER(detail) LIKE '%secret lane%' OR detail LIKE '%HX7%'";
    assert_eq!(scalar(&app.db, in_audit).await, 0, "the audit log holds nothing of his");
    assert_eq!(
        scalar(&app.db, "SELECT COUNT(*) FROM audit_log WHERE action = 'member.details'").await,
        1,
        "its line stays"
    );

    // Eight years on: the cheque giver and Bob, a member no more, are pseudonymised.
    let done = run_once(store.as_ref(), 7, zone, years_on(8)).await.expect("retention");
    assert_eq!((done.erased, done.events_forgotten), (2, 1), "{done:?}");
    let gone = find_anywhere(
        &app.db.url,
        &[
            "old.giver",
            "olive oldgiver",
            "bob.former",
            "bob formerly",
            "robert formerly",
            "secret lane",
            "pat.link",
            "linkgiver",
        ],
    )
    .await;
    assert!(gone.is_empty(), "still held: {gone:?}");
    let kept = find_anywhere(&app.db.url, &["ada@example.org", "ada lovelace", "monthly@example.org"]).await;
    for place in ["members.name: ada lovelace", "people.email: monthly@example.org", "people.email: ada@example.org"] {
        assert!(kept.iter().any(|k| k == place), "{place} kept: {kept:?}");
    }
    assert_eq!(app.raised().await, raised, "the figures stay");
    let payments_after = store.counted_payments(years_on(0) - chrono::Duration::days(30)).await.expect("payments");
    let amounts = |p: &[coopfund::domain::CountedPayment]| format!("{p:?}").matches("Pence").count();
    assert_eq!(payments_after.len(), payments_before.len(), "reconcile sees the same payments");
    assert_eq!(amounts(&payments_after), amounts(&payments_before));
    let receipts = scalar(&app.db, "SELECT COUNT(*) FROM outbox WHERE receipt_number IS NOT NULL").await;
    assert_eq!(receipts, receipts_before, "every receipt number stays");
    let audit = store.audit_entries(20).await.expect("audit");
    assert_eq!(audit.iter().filter(|a| a.actor == "the retention job").count(), 2, "{audit:?}");
    assert!(audit.iter().any(|a| a.detail.contains("register entry removed")), "{audit:?}");

    // Nothing is left to do: a second run changes nothing.
    let again = run_once(store.as_ref(), 7, zone, years_on(8)).await.expect("retention");
    assert_eq!(again, Retained::default());
    app.running.stop().await;
}

/// The job runs on every instance: two at once erase each inactive person exactly once.
async fn two_instances_running_the_job_at_once_erase_each_person_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let first = coopfund::store::open(&db.url).await.expect("open");
    let second = coopfund::store::open(&db.url).await.expect("open");
    let now: DateTime<Utc> = NOW.parse().expect("instant");
    first.seed_demo_campaign("2026-11-17".parse().expect("date"), now).await.expect("seed");
    for n in 0..12 {
        let cheque = crate::receipts::cheque(1_000 + n, &format!("giver{n}@example.org"));
        first.record_offline_gift(&cheque, now, &Actor::command_line(), now).await.expect("record");
    }
    let zone = chrono_tz::Europe::London;
    let (a, b) =
        tokio::join!(run_once(first.as_ref(), 7, zone, years_on(8)), run_once(second.as_ref(), 7, zone, years_on(8)));
    let (a, b) = (a.expect("first instance"), b.expect("second instance"));
    assert_eq!(a.erased + b.erased, 12, "each person once: {a:?} {b:?}");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM audit_log WHERE action = 'reader.erase'").await, 12);
    assert!(find_anywhere(&db.url, &["giver"]).await.is_empty(), "no giver left");
    let raised = first.campaign("fighting-fund-2026-11").await.expect("read").expect("fund").raised;
    assert_eq!(raised.0, (0..12).map(|n| 1_000 + n).sum::<i64>(), "the figures stay");
}
