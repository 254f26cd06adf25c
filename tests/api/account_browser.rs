//! The readers' page in the real headless Chromium on a 390-pixel phone (issue 17): a reader
//! asks for a link, signs in with the button, finds their gifts, receipt and statement, and
//! meets each refusal; axe-core finds no WCAG 2.2 A/AA violation in any of these states, no
//! page is wider than the phone, and screenshots are kept for a person to look at.

use std::time::Duration;

use fantoccini::Locator;

use crate::accessibility::{audit, axe_source, click, heading_becomes as heading, wait_for};
use crate::account::{app_with_smtp, buy_shares, link_in};
use crate::browser::Driven;
use crate::helpers::{Engine, ok};
use crate::smtp::SmtpSink;

async fn type_into(browser: &Driven, css: &str, text: &str) {
    let field = browser.client.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Audits the page the browser shows, checks it fits the phone, and keeps a screenshot.
async fn look(browser: &Driven, axe: &str, state: &str, found: &mut Vec<String>) {
    audit(browser, axe, state, found).await;
    let overflow = "return document.documentElement.scrollWidth - document.documentElement.clientWidth;";
    let overflow = browser.client.execute(overflow, vec![]).await.expect("overflow");
    if overflow.as_i64().unwrap_or(0) > 0 {
        found.push(format!("{state}: wider than a 390-pixel phone by {overflow} px"));
    }
    let name = format!("look-account-{}.png", state.replace([' ', '/'], "-"));
    println!("{state}: {}", browser.screenshot(&name).await.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_s_page_on_a_phone_passes_axe_in_every_state() {
    let axe = axe_source();
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(Engine::Sqlite, &smtp).await;
    buy_shares(&app, "Ada Lovelace", "1 Mill Lane", "ada@example.org", "100").await;
    buy_shares(&app, "Ada King", "2 Canal Street", "ada@example.org", "10").await;
    let cheque = ["gift", "add", "--campaign", "fighting-fund-2026-11", "--amount", "40", "--method", "cheque"];
    ok(app.cli(&[&cheque[..], &["--date", "2026-11-12", "--email", "ada@example.org"]].concat()));
    smtp.wait_for(3, Duration::from_secs(10)).await;

    let browser = Driven::start(390, 1600).await;
    let client = &browser.client;
    let mut found = Vec::new();
    client.goto(&app.url("/account")).await.expect("/account");
    heading(&browser, "Your gifts, receipts and shares").await;
    look(&browser, &axe, "sign-in form", &mut found).await;
    type_into(&browser, "#email", "not an address").await;
    click(&browser, "form[action='/account/link'] button").await;
    wait_for(&browser, "#email-error").await;
    look(&browser, &axe, "sign-in form refused", &mut found).await;
    type_into(&browser, "#email", "ada@example.org").await;
    click(&browser, "form[action='/account/link'] button").await;
    wait_for(&browser, "p.notice").await;
    look(&browser, &axe, "link on its way", &mut found).await;

    let path = link_in(&smtp.wait_for(4, Duration::from_secs(10)).await);
    client.goto(&app.url(&path)).await.expect("the link");
    heading(&browser, "Sign in to your page").await;
    look(&browser, &axe, "sign-in button", &mut found).await;
    click(&browser, "main form button").await;
    heading(&browser, "Your page").await;
    let page = client.source().await.expect("page");
    assert!(page.contains("Member no. 1") && page.contains("£40.00") && page.contains("You gave:"), "{page}");
    look(&browser, &axe, "signed in", &mut found).await;

    type_into(&browser, "#postcode", "nowhere!").await;
    click(&browser, "form[action='/account/details'] button").await;
    wait_for(&browser, "#postcode-error").await;
    look(&browser, &axe, "details refused", &mut found).await;
    click(&browser, "form[action='/account/erase'] button").await;
    wait_for(&browser, "#erase-error").await;
    look(&browser, &axe, "erasure refused", &mut found).await;
    click(&browser, "form[action^='/account/changes/'] button[value='accept']").await;
    heading(&browser, "Your page").await;
    wait_for(&browser, "p.notice").await;
    look(&browser, &axe, "change accepted", &mut found).await;

    client.goto(&app.url("/account/receipts/R-2026-000001")).await.expect("receipt");
    look(&browser, &axe, "receipt", &mut found).await;
    client.goto(&app.url("/account/statement/2026")).await.expect("statement");
    look(&browser, &axe, "statement", &mut found).await;
    client.goto(&app.url("/account/receipts/R-2099-000001")).await.expect("no such receipt");
    look(&browser, &axe, "no such receipt", &mut found).await;
    // A used link says so at once, with the form for a new one: no button to press in vain.
    client.goto(&app.url(&path)).await.expect("the link again");
    heading(&browser, "This link cannot sign you in").await;
    look(&browser, &axe, "used link", &mut found).await;
    browser.stop().await;
    assert!(found.is_empty(), "problems on the readers' page:\n{}", found.join("\n"));
    app.running.stop().await;
}
