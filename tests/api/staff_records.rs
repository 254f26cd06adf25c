//! What staff record and read is what happened: an offline gift once however it is entered and
//! only into a fund, every stored event findable, people only with money or membership, and the
//! public list net of refunds (issue 15 items 8, 9, 10, 13; issue 18 item 6).

use crate::helpers::{Engine, NOW, TestApp, ok, refused};
use crate::on_both_engines;
use crate::staff::{StaffSession, add_staff};
use crate::stripe::{CardGift, FakeStripe, fixture};

on_both_engines!(
    the_same_rendered_gift_form_posted_twice_books_one_gift,
    gift_add_with_a_reference_records_once_and_never_into_a_share_issue,
    a_refund_takes_a_gift_off_the_public_list_or_shows_what_is_left,
    every_stored_event_is_found_by_its_status,
    a_cheque_giver_is_a_person_and_an_unpaid_checkout_is_not,
);

async fn finance(app: &TestApp) -> StaffSession {
    add_staff(&app.env, "finance@paper.example", "finance");
    StaffSession::sign_in(&app.base, "finance@paper.example").await
}

/// The one-time token in a rendered gift entry form.
pub async fn form_token(staff: &StaffSession) -> String {
    let page = staff.page("/staff/gifts/new").await;
    let start = page.find("name=\"form_token\" value=\"").expect("a form_token field") + 25;
    page[start..].split('"').next().expect("a token").to_owned()
}

/// A £196 cheque from a reader who gave an address, on the form rendered with `token`.
fn cheque(token: &str) -> [(&str, &str); 6] {
    [
        ("campaign", "fighting-fund-2026-11"),
        ("amount", "196"),
        ("method", "cheque"),
        ("received_on", "2026-11-16"),
        ("email", "giver@example.org"),
        ("form_token", token),
    ]
}

async fn the_same_rendered_gift_form_posted_twice_books_one_gift(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let staff = finance(&app).await;
    let token = form_token(&staff).await;
    assert_ne!(token, form_token(&staff).await, "a token per rendered form");
    let form = cheque(&token);
    let (first, second) = tokio::join!(staff.post("/staff/gifts/new", &form), staff.post("/staff/gifts/new", &form));
    let third = staff.post("/staff/gifts/new", &cheque(&token)).await;
    let to = |r: &reqwest::Response| (r.status().as_u16(), r.headers()["location"].to_str().expect("to").to_owned());
    let gift = to(&first);
    assert_eq!(gift.0, 303);
    assert_eq!((to(&second), to(&third)), (gift.clone(), gift.clone()), "each post shows the one gift");
    let current = app.get_json("/api/campaigns/current").await;
    assert_eq!((current["raised_pence"].as_i64(), current["gifts"].as_i64()), (Some(19_600), Some(1)));
    let reference = gift.1.trim_start_matches("/staff/gifts/");
    let store = &app.running.state.store;
    assert_eq!(store.emails_about(reference).await.expect("emails").len(), 1, "one receipt");
    let outbox = store.outbox_counts().await.expect("outbox");
    assert_eq!(outbox.pending + outbox.sent, 1, "one email in all");

    let without = staff.post("/staff/gifts/new", &cheque("")).await;
    assert_eq!(without.status(), 422, "a form without its token");
    let page = without.text().await.expect("page");
    assert!(page.contains("This form has expired") && page.contains("value=\"196\""), "{page}");
    assert!(!page.contains("name=\"form_token\" value=\"\""), "the form comes back with a new token");
    assert_eq!(app.raised().await, 19_600, "nothing more booked");
    app.running.stop().await;
}

async fn gift_add_with_a_reference_records_once_and_never_into_a_share_issue(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let add = |campaign: &str, amount: &str, reference: Option<&str>| {
        let mut args = vec!["gift", "add", "--campaign", campaign, "--amount", amount, "--method", "cheque"];
        args.extend(["--date", "2026-11-12", "--email", "giver@example.org"]);
        args.extend(reference.map(|r| ["--reference", r]).into_iter().flatten());
        app.cli(&args)
    };
    let first = ok(add("fighting-fund-2026-11", "196", Some("100123")));
    assert_eq!(first, "recorded £196.00 by cheque for fighting-fund-2026-11 (gift-cheque-100123)\n");
    let again = ok(add("fighting-fund-2026-11", "196", Some("100123")));
    assert_eq!(
        again,
        "already recorded £196.00 by cheque for fighting-fund-2026-11 (gift-cheque-100123): nothing changed\n"
    );
    let other = refused(add("fighting-fund-2026-11", "169", Some("100123")));
    assert!(other.contains("--reference: gift-cheque-100123 is already recorded as £196.00"), "{other}");
    assert!(refused(add("fighting-fund-2026-11", "196", Some("no 1"))).contains("--reference"));
    let current = app.current_when(|c| c["raised_pence"] == 19_600).await;
    assert_eq!(current["gifts"], 1);
    let outbox = app.running.state.store.outbox_counts().await.expect("outbox");
    assert_eq!(outbox.pending + outbox.sent, 1, "one receipt");
    ok(add("fighting-fund-2026-11", "1", None));
    ok(add("fighting-fund-2026-11", "1", None));
    app.current_when(|c| c["raised_pence"] == 19_800).await;

    app.open_share_issue("500", "2026-11-30");
    let line = refused(add("share-issue", "50", None));
    assert_eq!(line, "error: --campaign: share-issue is a share issue: gifts go only into a fund");
    assert_eq!(app.get_json("/api/campaigns/share-issue").await["raised_pence"], 0);
    let staff = finance(&app).await;
    let token = form_token(&staff).await;
    let mut to_shares = cheque(&token);
    to_shares[0].1 = "share-issue";
    let page = staff.post("/staff/gifts/new", &to_shares).await;
    assert_eq!(page.status(), 422, "the staff page meets the same rule");
    assert_eq!(app.get_json("/api/campaigns/share-issue").await["raised_pence"], 0);
    app.running.stop().await;
}

async fn a_refund_takes_a_gift_off_the_public_list_or_shows_what_is_left(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let mut gifts = Vec::new();
    for (key, place) in [("ken", "Sheffield"), ("ann", "Leeds")] {
        let form = [("amount", "25"), ("email", "reader@example.org"), ("display_name", "Red Ken"), ("place", place)];
        let answered = app.http.post(app.url("/donate")).form(&form).send().await.expect("donate");
        assert_eq!(answered.status(), 303);
        let donation = stripe.created().last().and_then(|s| s.field("client_reference_id").map(str::to_owned));
        let gift = CardGift::new(key, 2_500);
        assert_eq!(app.deliver(&gift.paid(donation.as_deref())).await, 200);
        gifts.push(gift);
    }
    let listed = || async { app.get("/gifts").await.text().await.expect("gifts") };
    let page = listed().await;
    assert!(page.contains("£25, Sheffield, &#39;Red Ken&#39;") && page.contains("£25, Leeds"), "{page}");
    assert_eq!(app.deliver(&gifts[0].refunded(1_000, 1)).await, 200);
    assert_eq!(app.deliver(&gifts[1].refunded(2_500, 1)).await, 200);
    let page = listed().await;
    assert!(page.contains("£15, Sheffield, &#39;Red Ken&#39;"), "a partial refund shows the net: {page}");
    assert!(!page.contains("Leeds"), "a gift refunded in full leaves the list: {page}");
    assert_eq!(app.raised().await, 1_500);
    app.running.stop().await;
}

async fn every_stored_event_is_found_by_its_status(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    let gift = CardGift::new("seen", 2_500);
    let unknown = fixture("unknown_event_type.json");
    let early = CardGift::new("early", 1_000).refunded(500, 1);
    for event in [&gift.paid(None), &unknown, &early] {
        assert_eq!(app.deliver(event).await, 200);
    }
    let staff = finance(&app).await;
    let id = |e: &serde_json::Value| e["id"].as_str().expect("an id").to_owned();
    let (paid, ignored, parked) = (id(&gift.paid(None)), id(&unknown), id(&early));
    let default = staff.page("/staff/events").await;
    assert!(default.contains(&parked) && !default.contains(&paid) && !default.contains(&ignored), "{default}");
    let all = staff.page("/staff/events?status=all").await;
    assert!([&paid, &ignored, &parked].iter().all(|id| all.contains(id.as_str())), "{all}");
    for (status, shown, hidden) in
        [("processed", &paid, &ignored), ("ignored", &ignored, &paid), ("parked", &parked, &paid)]
    {
        let page = staff.page(&format!("/staff/events?status={status}")).await;
        assert!(page.contains(shown.as_str()) && !page.contains(hidden.as_str()), "{status}: {page}");
    }
    let processed = staff.page("/staff/events?status=processed").await;
    assert!(!processed.contains("Process again"), "a processed event has nothing to do again");
    let found = staff.page(&format!("/staff/events?status=all&q={}", paid.to_uppercase())).await;
    assert!(found.contains(&paid) && !found.contains(&ignored), "{found}");
    let by_type = unknown["type"].as_str().expect("a type");
    assert!(staff.page(&format!("/staff/events?status=all&q={by_type}")).await.contains(&ignored));
    app.running.stop().await;
}

async fn a_cheque_giver_is_a_person_and_an_unpaid_checkout_is_not(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let staff = finance(&app).await;
    let token = form_token(&staff).await;
    let mut with_name = cheque(&token).to_vec();
    with_name.push(("name", "Chris Cheque"));
    assert_eq!(staff.post("/staff/gifts/new", &with_name).await.status(), 303);
    let unpaid = [("amount", "10"), ("email", "browser@example.org"), ("name", "Never Paid")];
    assert_eq!(app.http.post(app.url("/donate")).form(&unpaid).send().await.expect("donate").status(), 303);
    let people = staff.page("/staff/people").await;
    assert!(people.contains("giver@example.org") && people.contains("Chris Cheque"), "{people}");
    assert!(people.contains("£196.00"), "{people}");
    assert!(!people.contains("browser@example.org") && !people.contains("Never Paid"), "{people}");
    assert!(staff.page("/staff/people?q=CHRIS").await.contains("giver@example.org"));

    let sent = staff.post("/staff/people/link", &[("email", "giver@example.org")]).await;
    assert_eq!(sent.status(), 303);
    let back = staff.page(sent.headers()["location"].to_str().expect("back")).await;
    assert!(back.contains("Sign-in link sent"), "{back}");
    let store = &app.running.state.store;
    let emails = store.reader_emails("giver@example.org").await.expect("emails");
    assert!(emails.iter().any(|(_, _, n)| n.subject("X").starts_with("Your sign-in link")), "{emails:?}");
    let audit = store.audit_entries(5).await.expect("audit");
    assert!(audit.iter().any(|a| a.action == "reader.link" && !a.detail.contains("giver@")), "{audit:?}");
    let nobody = staff.post("/staff/people/link", &[("email", "browser@example.org")]).await;
    let back = staff.page(nobody.headers()["location"].to_str().expect("back")).await;
    assert!(back.contains("Sign-in link not sent"), "no link for an unpaid checkout: {back}");
    app.running.stop().await;
}
