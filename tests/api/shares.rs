//! Readers becoming members: share applications, allotment, member numbers and the register.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Engine, NOW, TestApp, TestDb, ok};
use crate::on_both_engines;
use crate::receipts::app_with_smtp;
use crate::smtp::SmtpSink;
use crate::stripe::{CardGift, FakeStripe};

on_both_engines!(
    a_reader_buys_shares_becomes_member_one_and_buys_more_under_another_case,
    a_refund_takes_the_shares_back_and_the_register_keeps_the_history,
    over_the_cap_is_refused_before_any_payment,
    concurrent_first_payments_get_distinct_consecutive_member_numbers,
    an_allotment_that_would_break_the_cap_is_held_for_staff,
    a_share_issue_has_its_own_ticker_and_the_fund_never_moves,
    a_share_issue_may_run_without_a_target_or_a_last_day,
    bad_join_forms_are_shown_again_and_change_nothing,
    the_demo_gateway_allots_shares,
);

const HEADER: &str = "member_number,name,address,email,shares,amount_paid,entered_on,ceased_on";

fn applicant<'a>(email: &'a str, amount: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("name", "Ada Lovelace"),
        ("address_line1", "1 Mill Lane"),
        ("address_line2", ""),
        ("town", "Leeds"),
        ("postcode", "ls1 4ap"),
        ("email", email),
        ("amount", amount),
        ("declaration", "yes"),
    ]
}

async fn join(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.http.post(app.url("/join")).form(form).send().await.expect("POST /join")
}

/// Applies through the form and returns the application id Checkout was given.
async fn apply(app: &TestApp, stripe: &FakeStripe, email: &str, amount: &str) -> String {
    let response = join(app, &applicant(email, amount)).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap_or_default());
    let session = stripe.created().pop().expect("a Checkout Session");
    session.field("metadata[application]").expect("metadata[application]").to_owned()
}

fn register(app: &TestApp) -> Vec<String> {
    let csv = ok(app.cli(&["register", "export"]));
    let mut lines: Vec<String> = csv.split("\r\n").map(str::to_owned).collect();
    assert_eq!(lines.pop().as_deref(), Some(""), "each record ends in CRLF: {csv:?}");
    assert_eq!(lines[0], HEADER);
    lines.split_off(1)
}

async fn fund(app: &TestApp) -> Value {
    app.get_json("/api/campaigns/current").await
}

async fn a_reader_buys_shares_becomes_member_one_and_buys_more_under_another_case(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    let fund_before = fund(&app).await;

    let application = apply(&app, &stripe, "Ada@Example.org", "100").await;
    assert!(application.starts_with("shr_"), "{application}");
    let session = stripe.created().pop().expect("session");
    assert_eq!(session.field("mode"), Some("payment"));
    assert_eq!(session.field("metadata[kind]"), Some("shares"));
    assert_eq!(session.field("metadata[campaign]"), None, "shares are for no fund");
    assert_eq!(session.field("client_reference_id"), Some(application.as_str()));
    assert_eq!(session.field("line_items[0][price_data][unit_amount]"), Some("10000"));
    assert_eq!(
        session.field("success_url"),
        Some("http://127.0.0.1:8080/join/thanks?session_id={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(session.idempotency_key.as_deref(), Some(format!("checkout-{application}").as_str()));
    assert!(register(&app).is_empty(), "nobody is a member before paying");

    let first = CardGift::new("shares_1", 10_000);
    for _ in 0..2 {
        assert_eq!(app.deliver(&first.shares_paid(&application)).await, 200);
    }
    assert_eq!(
        register(&app),
        ["1,Ada Lovelace,\"1 Mill Lane, Leeds, LS1 4AP\",Ada@Example.org,100,100.00,2026-11-03,"]
    );
    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1, "one confirmation, however often Stripe says so");
    let parsed = received[0].parsed();
    assert_eq!(parsed.subject(), Some("Welcome to Morning Star Readers: you are member no. 1"));
    let text = parsed.body_text(0).expect("text").into_owned();
    for expected in ["Member number: 1", "Receipt R-2026-000001", "100 shares (£100.00)", "3 November 2026", "1234R"] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert!(parsed.body_html(0).expect("html").contains("Member number"));

    let again = apply(&app, &stripe, "ada@example.org", "50").await;
    assert_eq!(app.deliver(&CardGift::new("shares_2", 5_000).shares_paid(&again)).await, 200);
    assert_eq!(
        register(&app),
        ["1,Ada Lovelace,\"1 Mill Lane, Leeds, LS1 4AP\",Ada@Example.org,150,150.00,2026-11-03,"]
    );
    let received = smtp.wait_for(2, Duration::from_secs(10)).await;
    let parsed = received[1].parsed();
    assert_eq!(parsed.subject(), Some("Your shares in Morning Star Readers: receipt R-2026-000002"));
    assert!(parsed.body_text(0).expect("text").contains("Your holding now: 150 shares (£150.00)"));

    let store = &app.running.state.store;
    assert_eq!(store.share_capital().await.expect("capital").0, 15_000);
    let fund_after = fund(&app).await;
    assert_eq!(fund_after["raised_pence"], fund_before["raised_pence"], "share capital is not a gift");
    assert_eq!(fund_after["gifts"], fund_before["gifts"]);
    app.running.stop().await;
}

async fn a_refund_takes_the_shares_back_and_the_register_keeps_the_history(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    let first = CardGift::new("hold_1", 10_000);
    let second = CardGift::new("hold_2", 5_000);
    let application = apply(&app, &stripe, "ada@example.org", "100").await;
    assert_eq!(app.deliver(&first.shares_paid(&application)).await, 200);
    let application = apply(&app, &stripe, "ada@example.org", "50").await;
    // The refund comes before its payment: it waits, then takes the shares back.
    assert_eq!(app.deliver(&second.refunded(5_000, 1)).await, 200);
    assert_eq!(app.deliver(&second.shares_paid(&application)).await, 200);
    assert_eq!(app.deliver(&second.refunded(5_000, 1)).await, 200, "a repeat changes nothing");
    assert_eq!(
        register(&app),
        ["1,Ada Lovelace,\"1 Mill Lane, Leeds, LS1 4AP\",ada@example.org,100,100.00,2026-11-03,"]
    );
    let store = &app.running.state.store;
    let history: Vec<(i64, i64)> =
        store.allotments(Some(1)).await.expect("history").iter().map(|a| (a.shares, a.amount.0)).collect();
    assert_eq!(history, [(100, 10_000), (50, 5_000), (-50, -5_000)]);

    // Half of the first payment, then the rest: the member has none left and has ceased.
    assert_eq!(app.deliver(&first.refunded(4_000, 1)).await, 200);
    assert_eq!(app.deliver(&first.refunded(10_000, 2)).await, 200);
    assert_eq!(
        register(&app),
        ["1,Ada Lovelace,\"1 Mill Lane, Leeds, LS1 4AP\",ada@example.org,0,0.00,2026-11-03,2026-11-10"]
    );
    let history: Vec<i64> = store.allotments(None).await.expect("history").iter().map(|a| a.shares).collect();
    assert_eq!(history, [100, 50, -50, -40, -60]);
    assert_eq!(store.share_capital().await.expect("capital").0, 0);
    let received = smtp.wait_for(5, Duration::from_secs(10)).await;
    let refunds = received.iter().filter(|m| m.parsed().subject() == Some("Your refund from Morning Star Readers"));
    assert_eq!(refunds.count(), 3, "a notice for each refund");
    app.running.stop().await;
}

async fn over_the_cap_is_refused_before_any_payment(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let application = apply(&app, &stripe, "ada@example.org", "19950").await;
    assert_eq!(app.deliver(&CardGift::new("big", 1_995_000).shares_paid(&application)).await, 200);
    let sessions = stripe.created().len();

    let response = join(&app, &applicant("ADA@example.org", "100")).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("page");
    assert!(page.contains("This address may buy at most £50.00 more in shares"), "{page}");
    assert!(!page.contains("19,950"), "the page never says what an address holds: {page}");
    assert!(page.contains("value=\"100\""), "the form keeps what was typed");
    let response = join(&app, &applicant("someone@example.org", "20001")).await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.expect("page").contains("One member may hold at most £20,000.00"));
    assert_eq!(stripe.created().len(), sessions, "nothing reached Stripe");
    app.running.stop().await;
}

async fn concurrent_first_payments_get_distinct_consecutive_member_numbers(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    const PEOPLE: usize = 12;
    let mut events = Vec::new();
    for i in 0..PEOPLE {
        let application = apply(&app, &stripe, &format!("member{i}@example.org"), "10").await;
        events.push(CardGift::new(&format!("race_{i}"), 1_000).shares_paid(&application));
    }
    let statuses = futures::future::join_all(events.iter().map(|e| app.deliver(e))).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let mut numbers: Vec<i64> =
        register(&app).iter().map(|r| r.split(',').next().expect("number").parse().expect("a number")).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=PEOPLE as i64).collect::<Vec<_>>());
    app.running.stop().await;
}

async fn an_allotment_that_would_break_the_cap_is_held_for_staff(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    // Two applications made before either was paid: each fits alone, not both.
    let first = apply(&app, &stripe, "ada@example.org", "15000").await;
    let second = apply(&app, &stripe, "ada@example.org", "10000").await;
    assert_eq!(app.deliver(&CardGift::new("cap_1", 1_500_000).shares_paid(&first)).await, 200);
    assert_eq!(app.deliver(&CardGift::new("cap_2", 1_000_000).shares_paid(&second)).await, 200);
    let rows = register(&app);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains(",15000,15000.00,"), "{rows:?}");
    let store = &app.running.state.store;
    assert_eq!(store.share_application(&second).await.expect("read").expect("kept").status, "held");
    assert_eq!(store.share_application(&first).await.expect("read").expect("kept").status, "allotted");
    crate::staff::add_staff(&app.env, "viewer@paper.example", "viewer");
    let staff = crate::staff::StaffSession::sign_in(&app.base, "viewer@paper.example").await;
    let members = staff.page("/staff/members").await;
    assert!(members.contains("held for a decision") && members.contains("past the cap of £20,000.00"), "{members}");
    // Staff refund it in Stripe: nothing was allotted, so nothing is taken back, and it is settled.
    assert_eq!(app.deliver(&CardGift::new("cap_2", 1_000_000).refunded(1_000_000, 1)).await, 200);
    assert_eq!(store.share_application(&second).await.expect("read").expect("kept").status, "cancelled");
    assert!(!staff.page("/staff/members").await.contains("held for a decision"));
    assert!(register(&app)[0].contains(",15000,15000.00,"), "the first holding untouched");
    app.running.stop().await;
}

async fn a_share_issue_has_its_own_ticker_and_the_fund_never_moves(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    app.open_share_issue("50000", "2026-12-31");
    let fund_before = fund(&app).await;
    assert_eq!(fund_before["slug"], "fighting-fund-2026-11", "a share issue is never the current fund");
    let application = apply(&app, &stripe, "ada@example.org", "250").await;
    assert_eq!(app.deliver(&CardGift::new("issue", 25_000).shares_paid(&application)).await, 200);
    let issue = app.get_json("/api/campaigns/share-issue").await;
    assert_eq!((issue["raised_pence"].as_i64(), issue["gifts"].as_i64()), (Some(25_000), Some(1)));
    assert_eq!(issue["summary"], "£250 raised of £50,000, 44 days remaining");
    assert_eq!(fund(&app).await["raised_pence"], fund_before["raised_pence"]);
    assert_eq!(app.deliver(&CardGift::new("issue", 25_000).refunded(25_000, 1)).await, 200);
    assert_eq!(app.get_json("/api/campaigns/share-issue").await["raised_pence"], 0);
    app.running.stop().await;
}

async fn a_share_issue_may_run_without_a_target_or_a_last_day(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let created =
        ok(app.cli(&["campaign", "create", "--kind", "shares", "--title", "Share issue", "--starts", "2026-11-01"]));
    assert!(created.contains("no last day, target none"), "{created}");
    let application = apply(&app, &stripe, "ada@example.org", "250").await;
    assert_eq!(app.deliver(&CardGift::new("open", 25_000).shares_paid(&application)).await, 200);
    let issue = app.get_json("/api/campaigns/share-issue").await;
    assert_eq!((issue["raised_pence"].as_i64(), issue["status"].as_str()), (Some(25_000), Some("open")));
    assert_eq!(issue["summary"], "£250 raised");
    for absent in ["target_pence", "target", "remaining_pence", "remaining", "ends_on", "days_remaining"] {
        assert!(issue[absent].is_null(), "{absent}: {issue}");
    }
    assert_eq!(issue["target_reached"], false);
    let refused =
        crate::helpers::refused(app.cli(&["campaign", "create", "--title", "Appeal", "--starts", "2026-11-01"]));
    assert!(refused.contains("a fund needs a target"), "{refused}");
    app.running.stop().await;
}

async fn bad_join_forms_are_shown_again_and_change_nothing(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let page = app.get("/join").await.text().await.expect("form");
    for field in ["name", "address_line1", "address_line2", "town", "postcode", "email", "amount", "declaration"] {
        assert!(page.contains(&format!("name=\"{field}\"")), "{field} missing from the form");
    }
    let mut form = applicant("not an email", "10.50");
    form.retain(|(k, _)| *k != "declaration" && *k != "town");
    let response = join(&app, &form).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("page");
    for (field, message) in [
        ("email", "Enter an email address"),
        ("amount", "choose a whole number of shares"),
        ("town", "Enter your town or city"),
        ("declaration", "16 or over"),
    ] {
        assert!(page.contains(&format!("id=\"{field}-error\"")), "{field} error missing");
        assert!(page.contains(message), "{message:?} missing");
    }
    assert!(page.contains("value=\"Ada Lovelace\""), "input kept");
    assert!(stripe.created().is_empty());
    assert!(register(&app).is_empty());
    app.running.stop().await;
}

async fn the_demo_gateway_allots_shares(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let response = join(&app, &applicant("ada@example.org", "25")).await;
    assert_eq!(response.status(), 303);
    let checkout = response.headers()["location"].to_str().expect("location").to_owned();
    assert!(checkout.starts_with("/demo/checkout/shr_"), "{checkout}");
    let page = app.get(&checkout).await.text().await.expect("demo page");
    assert!(page.contains("Shares: £25.00"), "{page}");
    let paid = app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay");
    assert_eq!(paid.status(), 303);
    assert!(paid.headers()["location"].to_str().expect("location").starts_with("/join/thanks"));
    assert!(app.get("/join/thanks").await.text().await.expect("thanks").contains("member number"));
    assert_eq!(register(&app), ["1,Ada Lovelace,\"1 Mill Lane, Leeds, LS1 4AP\",ada@example.org,25,25.00,2026-11-17,"]);
    app.running.stop().await;
}
