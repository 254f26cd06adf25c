//! Readers giving: the form, Stripe Checkout, the demo gateway, thanks and the public list.

use crate::helpers::{Engine, NOW, TestApp, TestDb};
use crate::on_both_engines;
use crate::stripe::{CardGift, FakeStripe};

on_both_engines!(
    a_reader_donates_through_stripe_and_the_total_moves_by_exactly_that,
    a_monthly_supporter_checkout_is_a_subscription,
    bad_forms_are_shown_again_with_each_problem_and_change_nothing,
    the_demo_gateway_counts_through_the_webhook_path,
);

async fn donate(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    app.http.post(app.url("/donate")).form(fields).send().await.expect("POST /donate")
}

async fn a_reader_donates_through_stripe_and_the_total_moves_by_exactly_that(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let form = [
        ("amount", "25"),
        ("frequency", "once"),
        ("email", "Reader@Example.org"),
        ("display_name", "Red Ken"),
        ("place", "Sheffield"),
    ];
    let response = donate(&app, &form).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with("https://checkout.stripe.com/c/pay/cs_test_fake_1"), "{location}");

    let created = stripe.created();
    assert_eq!(created.len(), 1);
    let session = &created[0];
    let donation = session.field("client_reference_id").expect("client_reference_id").to_owned();
    assert!(donation.starts_with("don_"));
    assert_eq!(session.field("mode"), Some("payment"));
    assert_eq!(session.field("metadata[kind]"), Some("donation"));
    assert_eq!(session.field("metadata[donation]"), Some(donation.as_str()));
    assert_eq!(session.field("metadata[campaign]"), Some("fighting-fund-2026-11"));
    assert_eq!(session.field("customer_email"), Some("Reader@Example.org"));
    assert_eq!(session.field("line_items[0][price_data][unit_amount]"), Some("2500"));
    assert_eq!(session.field("line_items[0][price_data][currency]"), Some("gbp"));
    assert_eq!(
        session.field("success_url"),
        Some("http://127.0.0.1:8080/donate/thanks?session_id={CHECKOUT_SESSION_ID}")
    );
    let methods: Vec<&str> = session
        .form
        .iter()
        .filter(|(k, _)| k.starts_with("allowed_payment_method_types"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(methods, ["card", "bacs_debit"]);
    assert_eq!(session.idempotency_key.as_deref(), Some(format!("checkout-{donation}").as_str()));

    let thanks = app.get("/donate/thanks?session_id=cs_test_fake_1").await.text().await.expect("thanks");
    assert!(thanks.contains("Thank you") && thanks.contains("<strong>£0</strong>"), "the thanks page counts nothing");

    let before = app.get_json("/api/campaigns/current").await;
    assert_eq!(app.deliver(&CardGift::new("story", 2500).paid(Some(&donation))).await, 200);
    let after = app.get_json("/api/campaigns/current").await;
    assert_eq!(
        after["raised_pence"].as_i64().expect("raised") - before["raised_pence"].as_i64().expect("raised"),
        2500
    );
    assert_eq!(after["gifts"], 1);
    let gifts = app.get("/gifts").await.text().await.expect("gifts page");
    assert!(gifts.contains("£25, Sheffield, &#39;Red Ken&#39;"), "{gifts}");
    assert!(!gifts.contains("Example.org") && !gifts.contains("Reader@"), "never an email in public");
    app.running.stop().await;
}

async fn a_monthly_supporter_checkout_is_a_subscription(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let response = donate(
        &app,
        &[("amount", "10"), ("amount_other", "7.50"), ("frequency", "monthly"), ("email", "sam@example.org")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let session = stripe.created().pop().expect("a session");
    assert_eq!(session.field("mode"), Some("subscription"));
    assert_eq!(session.field("metadata[kind]"), Some("supporter"));
    assert_eq!(session.field("subscription_data[metadata][kind]"), Some("supporter"));
    assert_eq!(session.field("line_items[0][price_data][unit_amount]"), Some("750"));
    assert_eq!(session.field("line_items[0][price_data][recurring][interval]"), Some("month"));
    app.running.stop().await;
}

async fn bad_forms_are_shown_again_with_each_problem_and_change_nothing(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let response = donate(
        &app,
        &[
            ("amount", ""),
            ("amount_other", "12.345"),
            ("frequency", "weekly"),
            ("email", "not-an-address"),
            ("place", "<b>Leeds</b>"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("page");
    assert!(page.contains("at most two decimal places"), "amount error shown");
    assert!(page.contains("Enter an email address"), "email error shown");
    assert!(page.contains("Choose once or every month"), "frequency error shown");
    assert!(page.contains("value=\"12.345\"") && page.contains("value=\"not-an-address\""), "input kept");
    assert!(page.contains("aria-describedby=\"email-error\""), "the error is tied to its field");
    assert!(page.contains("Leeds") && !page.contains("<b>Leeds"), "input kept, escaped");
    for amount in ["0.50", "10000.01", "1e3", "-5"] {
        let response = donate(&app, &[("amount", amount), ("email", "a@example.org")]).await;
        assert_eq!(response.status(), 422, "{amount}");
    }
    let garbage = app
        .http
        .post(app.url("/donate"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("amount=%FF%FE&email=%")
        .send()
        .await
        .expect("POST");
    assert!(garbage.status().is_client_error(), "{}", garbage.status());
    assert!(stripe.created().is_empty(), "nothing reached Stripe");
    assert_eq!(app.raised().await, 0);
    app.running.stop().await;
}

async fn the_demo_gateway_counts_through_the_webhook_path(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let response = donate(
        &app,
        &[("amount", "25"), ("email", "reader@example.org"), ("place", "Sheffield"), ("display_name", "Red Ken")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with("/demo/checkout/don_"), "{location}");
    let page = app.get(&location).await.text().await.expect("demo page");
    assert!(page.contains("no money moves") && page.contains("£25.00") && page.contains("Pay (demo)"));

    let paid = app.http.post(app.url(&format!("{location}/pay"))).send().await.expect("pay");
    assert_eq!(paid.status(), 303);
    assert_eq!(app.raised().await, 2500);
    // Paying twice (a double click) still counts once.
    app.http.post(app.url(&format!("{location}/pay"))).send().await.expect("pay again");
    let current = app.get_json("/api/campaigns/current").await;
    assert_eq!((current["raised_pence"].as_i64(), current["gifts"].as_i64()), (Some(2500), Some(1)));
    let home = app.get("/").await.text().await.expect("home");
    assert!(home.contains("£25, Sheffield, &#39;Red Ken&#39;"), "recent gifts on the home page");

    let monthly =
        donate(&app, &[("amount", "5"), ("frequency", "monthly"), ("email", "sam@example.org"), ("anonymous", "on")])
            .await;
    let location = monthly.headers()["location"].to_str().expect("location").to_owned();
    app.http.post(app.url(&format!("{location}/pay"))).send().await.expect("pay monthly");
    assert_eq!(app.raised().await, 3000, "the first monthly payment counts");
    let gifts = app.get("/gifts").await.text().await.expect("gifts");
    assert!(gifts.contains(r#"£5, Anonymous <span class="monthly">monthly</span><span class="when">"#), "{gifts}");
    assert!(gifts.contains(r#"£25, Sheffield, &#39;Red Ken&#39;<span class="when">"#), "one-off, with when: {gifts}");
    app.running.stop().await;
}

/// Stripe accepts the connection and never answers: the reader is told so in time, and
/// nothing is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stripe_gets_a_clear_answer_in_time_not_a_hang() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", silent.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let settings = [
        ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", crate::stripe::WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", base),
    ];
    let app = TestApp::spawn_configured(TestDb::new(Engine::Sqlite).await, NOW, &settings).await;
    let started = std::time::Instant::now();
    let response = donate(&app, &[("amount", "25"), ("frequency", "once"), ("email", "reader@example.org")]).await;
    assert_eq!(response.status(), 502);
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "answered after {:?}", started.elapsed());
    assert!(response.text().await.expect("page").contains("Nothing has been taken"));
    assert_eq!(app.raised().await, 0);
    held.abort();
    app.running.stop().await;
}
