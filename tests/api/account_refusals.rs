//! What the readers' page refuses, and how (issue 17, outside review): links that cannot sign in
//! say so before their button is pressed, a stranger cannot use up a reader's links, receipts
//! are sent again only a few times an hour, a change of details says what changed (and nothing
//! when nothing did), every form shows its problems as the donation form does, and the staff's
//! last plain-text refusals are pages in the site's frame.

use std::time::Duration;

use coopfund::domain::account::SignInToken;
use coopfund::domain::{EmailAddress, Notice};

use crate::accessibility::assert_framed;
use crate::account::{ReaderBrowser, app_with_smtp, buy_shares, csrf_in, give, link_in, signed_in};
use crate::helpers::{Engine, NOW, TestApp, TestDb};
use crate::on_both_engines;
use crate::smtp::{Received, SmtpSink};
use crate::staff::{StaffSession, add_staff};

on_both_engines!(
    a_used_expired_or_wrong_link_says_so_before_its_button_is_pressed,
    a_strangers_refused_requests_leave_a_readers_links_alone,
    a_receipt_is_sent_again_a_few_times_an_hour_at_most,
    a_change_of_details_is_audited_before_and_after_and_no_change_is_none,
    every_form_of_the_readers_page_shows_its_problems_as_the_donation_form_does,
    a_search_with_mistakes_exported_is_a_page_in_the_sites_frame,
);

fn links(received: &[Received]) -> usize {
    received.iter().filter(|m| m.parsed().subject().unwrap_or_default().starts_with("Your sign-in link")).count()
}

/// The error summary at the top links to the field `id`, whose input is described by its message.
fn assert_summary_links_to(page: &str, id: &str) {
    assert!(page.contains("id=\"error-summary\""), "a summary at the top: {page}");
    assert!(page.contains(&format!("<a href=\"#{id}\">")), "the summary links to #{id}: {page}");
    assert!(page.contains("<title>Error: "), "the title says there is a problem: {page}");
}

fn assert_field_error(page: &str, id: &str) {
    assert_summary_links_to(page, id);
    assert!(page.contains(&format!("id=\"{id}-error\"")), "the message beside #{id}: {page}");
    assert!(page.contains(&format!("aria-invalid=\"true\" aria-describedby=\"{id}-error\"")), "#{id} tied: {page}");
}

/// SPEC §10: "A used or expired token says so and offers a new link", to the GET too, which
/// still changes nothing (mail scanners fetch links).
async fn a_used_expired_or_wrong_link_says_so_before_its_button_is_pressed(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    give(&app, &[("amount", "25"), ("email", "known@example.org")]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = ReaderBrowser::open(&app).await;
    assert_eq!(reader.post("/account/link", &[("email", "known@example.org")]).await.status(), 200);
    let path = link_in(&smtp.wait_for(2, Duration::from_secs(10)).await);
    for _ in 0..3 {
        assert!(reader.page(&path).await.contains(">Sign in</button>"), "a GET uses nothing up");
    }
    reader.csrf = csrf_in(&reader.page(&path).await);
    assert_eq!(reader.post(&path, &[]).await.status(), 303, "the link still signs in after the GETs");

    let mut other = ReaderBrowser::open(&app).await;
    let store = &app.running.state.store;
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().expect("instant");
    let old = SignInToken::fresh();
    let email = EmailAddress::parse("known@example.org").expect("address");
    let notice = Notice::SignInLink { url: String::new(), valid_minutes: 30 };
    let made = now - chrono::Duration::minutes(31);
    store
        .create_reader_link(&email, &old.hash(), &notice, made + chrono::Duration::minutes(30), made)
        .await
        .expect("old");
    let expired = format!("/account/signin/{}", old.as_str());
    for (link, what) in [(path.as_str(), "used"), (expired.as_str(), "31 minutes old")] {
        let answer = other.get(link).await;
        assert_eq!(answer.status(), 410, "{what}: gone");
        let page = answer.text().await.expect("page");
        assert!(page.contains("This link has been used or has expired"), "{what}: {page}");
        assert!(!page.contains(">Sign in</button>"), "{what}: no button to press in vain");
        assert!(page.contains("action=\"/account/link\"") && page.contains("id=\"email\""), "a new link: {page}");
        assert_framed(what, &page);
        other.csrf = csrf_in(&page);
    }
    for link in [format!("/account/signin/{}", SignInToken::fresh().as_str()), "/account/signin/short".to_owned()] {
        let answer = other.get(&link).await;
        assert_eq!(answer.status(), 404, "{link}");
        let page = answer.text().await.expect("page");
        assert!(page.contains("not one of ours") && page.contains("action=\"/account/link\""), "{page}");
    }
    // The form on the refusal asks for a new link.
    let asked = other.post("/account/link", &[("email", "known@example.org")]).await;
    assert_eq!(asked.status(), 200);
    assert!(asked.text().await.expect("page").contains("If we know that address, a link is on its way"));
    // The receipt, the first link, the old one's email (written with it) and the new link.
    assert_eq!(links(&smtp.wait_for(4, Duration::from_secs(10)).await), 3, "a new link");
    assert_eq!(other.post(&expired, &[]).await.status(), 410, "the expired link never signs in");
    assert!(other.page("/account").await.contains("Email me a link"), "not signed in");
    app.running.stop().await;
}

/// SPEC §10's limits (3 links an address, 20 requests a client address, an hour): a request
/// refused by either counts towards neither, so a stranger who has used up their own requests
/// cannot go on to use up a reader's; every answer is the same.
async fn a_strangers_refused_requests_leave_a_readers_links_alone(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let settings = [
        ("SMTP_URL", smtp.url()),
        ("ORG_NAME", "Morning Star Readers".to_owned()),
        ("CLIENT_IP_SOURCE", "RightmostXForwardedFor".to_owned()),
    ];
    let app = TestApp::spawn_configured(TestDb::new(engine).await, NOW, &settings).await;
    give(&app, &[("amount", "25"), ("email", "reader@example.org")]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut stranger = ReaderBrowser::open(&app).await;
    let answer = |page: String| page.replace(&csrf_in(&page), "");
    let mut answers = Vec::new();
    for n in 0..20 {
        let nobody = format!("nobody{n}@example.org");
        let asked = stranger.post_from("/account/link", &[("email", &nobody)], "203.0.113.9").await;
        answers.push(answer(asked.text().await.expect("page")));
    }
    for _ in 0..5 {
        let asked = stranger.post_from("/account/link", &[("email", "reader@example.org")], "203.0.113.9").await;
        assert_eq!(asked.status(), 200);
        answers.push(answer(asked.text().await.expect("page")));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "the same answer, refused or not");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(links(&smtp.received()), 0, "the stranger's client is over its limit: no link sent");

    let mut reader = ReaderBrowser::open(&app).await;
    for n in 1..=4 {
        let asked = reader.post_from("/account/link", &[("email", "READER@example.org")], "198.51.100.7").await;
        assert_eq!(answer(asked.text().await.expect("page")), answers[0], "request {n}: the same answer");
    }
    let received = smtp.wait_for(4, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(links(&smtp.received()), 3, "the reader's own three links, and no fourth: {}", received.len());
    app.running.stop().await;
}

/// "Email it to me again" (SPEC §10) at most 3 times a receipt and 10 times a reader an hour,
/// counted in the database: beyond that 429 in the site's frame, and no email.
async fn a_receipt_is_sent_again_a_few_times_an_hour_at_most(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    for _ in 0..4 {
        give(&app, &[("amount", "5"), ("email", "reader@example.org")]).await;
    }
    smtp.wait_for(4, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, "reader@example.org", 4).await;
    let resend = |n: u32| format!("/account/receipts/R-2026-00000{n}/resend");
    for _ in 0..3 {
        assert_eq!(reader.post(&resend(1), &[]).await.status(), 303);
    }
    let refused = reader.post(&resend(1), &[]).await;
    assert_eq!(refused.status(), 429, "a fourth copy of one receipt in the hour");
    assert_eq!(refused.headers()["retry-after"], "3600");
    let page = refused.text().await.expect("page");
    assert!(page.contains("3 times in the last hour") && page.contains("/account/receipts/R-2026-000001"), "{page}");
    assert_framed("a receipt sent again too often", &page);
    for n in 2..=3 {
        for _ in 0..3 {
            assert_eq!(reader.post(&resend(n), &[]).await.status(), 303);
        }
    }
    assert_eq!(reader.post(&resend(4), &[]).await.status(), 303, "the reader's tenth copy");
    assert_eq!(reader.post(&resend(4), &[]).await.status(), 429, "the reader's eleventh copy");
    smtp.wait_for(4 + 1 + 10, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 15, "four receipts, a link and ten copies; none refused was sent");
    app.running.stop().await;
}

/// SPEC §10: the register takes a member's change at once, and the audit log records "changed
/// by the member" with each field before and after; the same details again change nothing,
/// log nothing, and the page says so.
async fn a_change_of_details_is_audited_before_and_after_and_no_change_is_none(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    buy_shares(&app, "Ada Lovelace", "1 Mill Lane", "ada@example.org", "100").await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut ada = signed_in(&app, &smtp, "ada@example.org", 1).await;
    let store = &app.running.state.store;
    let logged = move || async move {
        let audit = store.audit_entries(100).await.expect("audit");
        audit.into_iter().filter(|a| a.action == "member.details").map(|a| a.detail).collect::<Vec<_>>()
    };
    let same = [
        ("name", "Ada Lovelace"),
        ("address_line1", "1 Mill Lane"),
        ("address_line2", ""),
        ("town", "Leeds"),
        ("postcode", "ls1 4ap"),
    ];
    let unchanged = ada.post("/account/details", &same).await;
    assert_eq!(unchanged.headers()["location"], "/account?done=unchanged");
    assert!(ada.page("/account?done=unchanged").await.contains("Nothing changed"), "told so");
    assert!(logged().await.is_empty(), "nothing changed, nothing logged");

    let moved = [
        ("name", "Ada King"),
        ("address_line1", "2 Canal Street"),
        ("address_line2", "Flat 3"),
        ("town", "Manchester"),
        ("postcode", "M1 3AB"),
    ];
    assert_eq!(ada.post("/account/details", &moved).await.headers()["location"], "/account?done=details");
    let lines = logged().await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("changed by the member"), "{lines:?}");
    assert!(lines[0].contains("name: Ada Lovelace → Ada King"), "{lines:?}");
    assert!(
        lines[0].contains("address: 1 Mill Lane, Leeds, LS1 4AP → 2 Canal Street, Flat 3, Manchester, M1 3AB"),
        "{lines:?}"
    );
    let only_name = [("name", "Ada Lovelace"), ("address_line1", "2 Canal Street"), ("address_line2", "Flat 3")];
    let only_name = [&only_name[..], &[("town", "Manchester"), ("postcode", "M1 3AB")]].concat();
    assert_eq!(ada.post("/account/details", &only_name).await.status(), 303);
    let lines = logged().await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().any(|l| l.ends_with("name: Ada King → Ada Lovelace")), "only what changed: {lines:?}");
    assert_eq!(ada.post("/account/details", &only_name).await.headers()["location"], "/account?done=unchanged");
    assert_eq!(logged().await.len(), 2, "the same again logs nothing");
    app.running.stop().await;
}

/// SPEC §4's way with a form's problems, on every form of `/account`: 422, a summary at the top
/// linking to each field, the message beside its field and tied to it.
async fn every_form_of_the_readers_page_shows_its_problems_as_the_donation_form_does(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    buy_shares(&app, "Ada Lovelace", "1 Mill Lane", "ada@example.org", "100").await;
    give(&app, &[("amount", "10"), ("frequency", "monthly"), ("email", "ada@example.org")]).await;
    smtp.wait_for(2, Duration::from_secs(10)).await;

    let mut stranger = ReaderBrowser::open(&app).await;
    let refused = stranger.post("/account/link", &[("email", "not an address")]).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert_field_error(&page, "email");
    assert!(page.contains("value=\"not an address\""), "what was typed is kept: {page}");

    let mut ada = signed_in(&app, &smtp, "ada@example.org", 2).await;
    let page = ada.page("/account").await;
    assert!(!page.contains("error-summary") && !page.contains("<title>Error"), "no problem, no summary");
    let details = [
        ("name", ""),
        ("address_line1", "2 Canal Street"),
        ("address_line2", ""),
        ("town", "Manchester"),
        ("postcode", "nowhere!"),
    ];
    let refused = ada.post("/account/details", &details).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert_field_error(&page, "name");
    assert_field_error(&page, "postcode");
    assert!(page.find("href=\"#name\"") < page.find("href=\"#postcode\""), "in the form's order");

    let refused = ada.post("/account/monthly/amount", &[("amount", "ten")]).await;
    assert_eq!(refused.status(), 422);
    assert_field_error(&refused.text().await.expect("page"), "monthly-1-amount");
    let refused = ada.post("/account/monthly/pause", &[("months", "9")]).await;
    assert_eq!(refused.status(), 422);
    assert_field_error(&refused.text().await.expect("page"), "monthly-1-months");

    let refused = ada.post("/account/erase", &[]).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert_summary_links_to(&page, "erase-confirm");
    assert!(page.contains("section 30"), "{page}");
    app.running.stop().await;
}

/// The staff's CSV export of a search with mistakes answers 422 with a page in the site's frame
/// (as every other refusal does), not a line of plain text.
async fn a_search_with_mistakes_exported_is_a_page_in_the_sites_frame(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    add_staff(&app.env, "finance@paper.example", "finance");
    let staff = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let refused = staff.get("/staff/gifts.csv?from=yesterday&amount=lots").await;
    assert_eq!(refused.status(), 422);
    assert!(refused.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
    let page = refused.text().await.expect("page");
    assert_framed("a search with mistakes exported", &page);
    assert!(page.contains("The search has mistakes") && page.contains("href=\"/staff/gifts\""), "{page}");
    app.running.stop().await;
}
