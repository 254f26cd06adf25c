//! Accessibility, proven in the real headless Chromium (issue 18): axe-core finds no WCAG 2.2
//! A/AA violation on any public or staff page, in their error states, nor in the widget
//! framed or embedded; a reader reaches the thanks page with the keyboard alone; and
//! screenshots at three widths for a person to look at.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;

use crate::browser::{Driven, HostPage};
use crate::helpers::{Engine, NOW, TestApp, ok, run_cli_with_input};
use crate::on_both_engines;
use crate::staff::PASSWORD;

on_both_engines!(
    an_amount_that_is_no_button_comes_back_typed_with_a_summary_that_links_to_each_field,
    pages_that_cannot_be_shown_keep_the_site_s_frame,
    every_page_links_the_one_style_sheet_that_browsers_keep_a_year,
    the_thanks_page_names_the_gift_that_stripe_sends_back,
);

/// The monthly section of `/account` (SPEC §10) in each of its states: active with its forms, a
/// refused amount with its field error, paused, and cancelling; and the demo's card page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_gift_s_forms_on_the_reader_s_page_pass_axe() {
    let axe = axe_source();
    let smtp = crate::smtp::SmtpSink::start().await;
    let app = crate::account::app_with_smtp(Engine::Sqlite, &smtp).await;
    crate::account::give(&app, &[("amount", "10"), ("frequency", "monthly"), ("email", "axe@example.org")]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = crate::account::ReaderBrowser::open(&app).await;
    assert_eq!(reader.post("/account/link", &[("email", "axe@example.org")]).await.status(), 200);
    let received = smtp.wait_for(2, Duration::from_secs(10)).await;
    let text = received[1].parsed().body_text(0).expect("a text part").into_owned();
    let start = text.find("/account/signin/").expect("a link");
    let link = text[start..].split_whitespace().next().expect("the link").to_owned();

    let browser = Driven::start(390, 844).await;
    let client = &browser.client;
    let mut found = Vec::new();
    client.goto(&app.url(&link)).await.expect("the sign-in link");
    click(&browser, "main button[type=submit]").await;
    wait_for(&browser, "form[action='/account/monthly/amount']").await;
    audit(&browser, &axe, "/account with a monthly gift", &mut found).await;
    client.find(Locator::Css("#monthly-1-amount")).await.expect("amount").send_keys("ten").await.expect("type");
    click(&browser, "form[action='/account/monthly/amount'] button").await;
    wait_for(&browser, "#monthly-1-amount-error").await;
    audit(&browser, &axe, "/account, a monthly amount refused", &mut found).await;
    click(&browser, "form[action='/account/monthly/pause'] button").await;
    wait_for(&browser, "form[action='/account/monthly/resume']").await;
    audit(&browser, &axe, "/account, the monthly gift paused", &mut found).await;
    client.execute("document.getElementById('monthly').scrollIntoView();", vec![]).await.expect("scroll");
    let shot = browser.screenshot("look-account-monthly-390.png").await;
    println!("the monthly section, paused, at 390 px: {}", shot.display());
    click(&browser, "form[action='/account/monthly/cancel'] button").await;
    for _ in 0..100 {
        let said = client.execute("return document.body.innerText.includes('ends on');", vec![]).await;
        if said.expect("the page's text").as_bool() == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    audit(&browser, &axe, "/account, the monthly gift cancelled", &mut found).await;
    click(&browser, "form[action='/account/monthly/payment-method'] button").await;
    heading_becomes(&browser, "Card or bank details (demo)").await;
    audit(&browser, &axe, "the demo's card page", &mut found).await;
    browser.stop().await;
    assert!(found.is_empty(), "accessibility problems:\n{}", found.join("\n"));
    app.running.stop().await;
}

/// The rules of WCAG 2.0, 2.1 and 2.2 at levels A and AA, as axe-core tags them.
const TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

pub fn axe_source() -> String {
    let path = std::env::var("COOPFUND_TEST_AXE")
        .expect("COOPFUND_TEST_AXE is not set: run the tests with scripts/test, which installs axe-core with npm");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read axe-core at {path}: {e}"))
}

/// Runs axe-core on the page the browser shows; each violation becomes a line in `found`.
pub async fn audit(browser: &Driven, axe: &str, state: &str, found: &mut Vec<String>) {
    let client = &browser.client;
    let loaded = client.execute(&format!("{axe}\nreturn typeof axe;"), vec![]).await.expect("inject axe-core");
    assert_eq!(loaded.as_str(), Some("object"), "axe-core loaded on {state}");
    let script = "const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: 'tag', values: arguments[0] }, iframes: false })
          .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                + v.nodes.map(n => n.target.join(' ')).join(', '))),
                e => done(['axe failed: ' + e]));";
    let result = client.execute_async(script, vec![serde_json::json!(TAGS)]).await.expect("run axe-core");
    let violations: Vec<String> = serde_json::from_value(result).expect("a list of violations");
    found.extend(violations.into_iter().map(|v| format!("{state}: {v}")));
}

async fn press(browser: &Driven, key: Key) {
    let keys = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: key.into() })
        .then(KeyAction::Up { value: key.into() });
    browser.client.perform_actions(keys).await.expect("press a key");
}

async fn focused(browser: &Driven) -> String {
    let id = browser.client.execute("return document.activeElement.id || document.activeElement.textContent;", vec![]);
    id.await.expect("the focused element").as_str().unwrap_or_default().trim().to_owned()
}

/// Presses Tab until the element `id` (or with that text) has the focus, as a keyboard user would.
async fn tab_to(browser: &Driven, id: &str) {
    for _ in 0..40 {
        if focused(browser).await == id {
            return;
        }
        press(browser, Key::Tab).await;
    }
    panic!("Tab never reached {id}; the focus is on {}", focused(browser).await);
}

/// The element `css`, waited for up to 10 seconds; a wait that began on the page a click is
/// replacing is aborted by the navigation, and looks again on the new page.
pub async fn wait_for(browser: &Driven, css: &str) -> fantoccini::elements::Element {
    for _ in 0..3 {
        match browser.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
            Ok(element) => return element,
            Err(e) if format!("{e:?}").contains("aborted by navigation") => continue,
            Err(e) => panic!("{css}: {e:?}"),
        }
    }
    panic!("{css}: every wait was aborted by a navigation")
}

async fn text_of(browser: &Driven, css: &str) -> String {
    wait_for(browser, css).await.text().await.expect("text")
}

/// Waits for the page that shows `heading`: the one before may still be there.
pub async fn heading_becomes(browser: &Driven, heading: &str) {
    let mut shown = String::new();
    for _ in 0..100 {
        if let Ok(h1) = browser.client.find(Locator::Css("h1")).await {
            shown = h1.text().await.unwrap_or_default();
            if shown == heading {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never showed {heading:?}; its heading is {shown:?}");
}

pub async fn click(browser: &Driven, css: &str) {
    browser.client.find(Locator::Css(css)).await.expect(css).click().await.expect("click");
}

fn add_staff(app: &TestApp, email: &str, role: &str) {
    ok(run_cli_with_input(&app.env, &["staff", "add", "--email", email, "--role", role], PASSWORD));
}

/// The host page's script from the README: the frame takes the height its page reports.
fn framing_page(base: &str) -> String {
    format!(
        "<h1>An article</h1><p>Readers own this paper.</p>\
         <iframe src=\"{base}/widget/fund\" title=\"Fighting fund\" style=\"border:0;width:100%;height:10rem\"></iframe>\
         <script>addEventListener('message', function (e) {{\
           if (e.origin !== '{base}' || !e.data || e.data.coopfund !== 'height') return;\
           document.querySelectorAll('iframe').forEach(function (f) {{\
             if (f.contentWindow === e.source) f.style.height = e.data.height + 'px'; }}); }});</script>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_a_keyboard_gives_and_the_pages_are_looked_at() {
    let axe = axe_source();
    let app = TestApp::spawn(Engine::Sqlite, NOW).await;
    add_staff(&app, "admin@paper.example", "admin");
    app.add_gift("250");
    ok(app.cli(&[
        "gift",
        "add",
        "--campaign",
        "fighting-fund-2026-11",
        "--amount",
        "40",
        "--method",
        "cheque",
        "--date",
        "2026-11-16",
        "--email",
        "cheque@example.org",
        "--name",
        "Chris Cheque",
        "--reference",
        "1001",
    ]));
    // A payment service that does not answer: the "Payments unavailable" page.
    let down = TestApp::spawn_configured(
        crate::helpers::TestDb::new(Engine::Sqlite).await,
        NOW,
        &[
            ("STRIPE_SECRET_KEY", "sk_test_fake".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", crate::stripe::WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", "http://127.0.0.1:9".to_owned()),
        ],
    )
    .await;
    let framed = HostPage::start(&framing_page(&app.base)).await;
    let embedded = HostPage::start(&format!(
        "<h1>An article</h1><p>Readers own this paper.</p>\
         <div data-coopfund-fund><a href=\"{base}/\">Donate to the fighting fund</a></div>\
         <script src=\"{base}/widget/fund.js\" async></script>",
        base = app.base
    ))
    .await;

    let browser = Driven::start(390, 844).await;
    let client = &browser.client;
    let mut found = Vec::new();

    // The keyboard journey, at a phone's width: from the skip link to the thanks page.
    client.goto(&app.url("/")).await.expect("open /");
    audit(&browser, &axe, "/", &mut found).await;
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "Skip to the content", "the first Tab stop skips to the content");
    press(&browser, Key::Enter).await;
    assert_eq!(focused(&browser).await, "main", "…which takes the focus there");
    tab_to(&browser, "frequency-once").await;
    press(&browser, Key::Right).await;
    assert_eq!(focused(&browser).await, "frequency-monthly", "the arrows move between Once and Monthly");
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "amount-15", "monthly starts at its middle amount");
    press(&browser, Key::Right).await;
    assert_eq!(text_of(&browser, "#give-button").await, "Give £25 every month", "the button says what happens");
    tab_to(&browser, "give-button").await;
    press(&browser, Key::Enter).await;
    wait_for(&browser, "#error-summary").await;
    assert_eq!(focused(&browser).await, "error-summary", "after an error the focus is on the summary");
    assert!(client.title().await.expect("title").starts_with("Error: "), "the title says so");
    audit(&browser, &axe, "/ refused", &mut found).await;
    press(&browser, Key::Tab).await;
    press(&browser, Key::Enter).await;
    assert_eq!(focused(&browser).await, "email", "the summary's link leads to the field");
    client.active_element().await.expect("email").send_keys("reader@example.org").await.expect("type");
    tab_to(&browser, "give-button").await;
    assert_eq!(text_of(&browser, "#give-button").await, "Give £25 every month", "the choice was kept");
    press(&browser, Key::Space).await;
    wait_for(&browser, "form[action$='/pay'] button").await;
    audit(&browser, &axe, "demo checkout", &mut found).await;
    tab_to(&browser, "Pay (demo)").await;
    press(&browser, Key::Enter).await;
    heading_becomes(&browser, "Thank you for your £25.00 every month").await;
    audit(&browser, &axe, "thanks", &mut found).await;

    // Every other public page and state.
    for path in
        ["/gifts", "/join", "/join/thanks", "/no/such/page", "/demo/checkout/don_00000000000000000000000000000000"]
    {
        client.goto(&app.url(path)).await.expect(path);
        audit(&browser, &axe, path, &mut found).await;
    }
    client.goto(&app.url("/join")).await.expect("/join");
    click(&browser, "form.join button[type=submit]").await;
    wait_for(&browser, "#error-summary").await;
    assert_eq!(focused(&browser).await, "error-summary");
    audit(&browser, &axe, "/join refused", &mut found).await;
    client.goto(&app.url("/account")).await.expect("/account");
    audit(&browser, &axe, "/account", &mut found).await;
    click(&browser, "form[action='/account/link'] button[type=submit]").await;
    wait_for(&browser, ".error").await;
    audit(&browser, &axe, "/account refused", &mut found).await;
    client.goto(&down.url("/")).await.expect("/ with payments down");
    client.find(Locator::Css("#email")).await.expect("email").send_keys("reader@example.org").await.expect("type");
    click(&browser, "#give-button").await;
    heading_becomes(&browser, "Payments unavailable").await;
    audit(&browser, &axe, "payments unavailable", &mut found).await;

    // The widget: its own page, framed by a news site (which takes the height it reports), and
    // drawn into a news site's div.
    client.goto(&app.url("/widget/fund")).await.expect("widget");
    audit(&browser, &axe, "/widget/fund", &mut found).await;
    client.goto(&framed.origin).await.expect("framing page");
    let mut height = String::new();
    for _ in 0..50 {
        let h = client.execute("return document.querySelector('iframe').style.height;", vec![]).await.expect("height");
        height = h.as_str().unwrap_or_default().to_owned();
        if height.ends_with("px") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(height.ends_with("px"), "the frame took the height the widget reported: {height:?}");
    audit(&browser, &axe, "a page framing the widget", &mut found).await;
    client.goto(&embedded.origin).await.expect("embedding page");
    embedded.shown_when(|text| text.contains("We need")).await;
    audit(&browser, &axe, "a page embedding the widget", &mut found).await;

    // Staff pages, signed out, refused and signed in, and the forms' error states.
    client.set_window_size(320, 700).await.expect("a small phone");
    client.goto(&app.url("/staff/login")).await.expect("login");
    let overflow = "return document.documentElement.scrollWidth - document.documentElement.clientWidth;";
    let overflow = client.execute(overflow, vec![]).await.expect("overflow");
    assert_eq!(overflow.as_i64(), Some(0), "the login fits a 320-pixel phone");
    audit(&browser, &axe, "/staff/login", &mut found).await;
    client.find(Locator::Css("#email")).await.expect("email").send_keys("admin@paper.example").await.expect("type");
    client.find(Locator::Css("#password")).await.expect("password").send_keys("wrong").await.expect("type");
    click(&browser, "main button[type=submit]").await;
    wait_for(&browser, ".error").await;
    audit(&browser, &axe, "/staff/login refused", &mut found).await;
    client.find(Locator::Css("#password")).await.expect("password").send_keys(PASSWORD).await.expect("type");
    click(&browser, "main button[type=submit]").await;
    wait_for(&browser, "#raised").await;
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "Skip to the content", "staff pages have a skip link too");
    for path in [
        "/staff",
        "/staff/gifts",
        "/staff/gifts/gift-cheque-1001",
        "/staff/gifts/no-such-gift",
        "/staff/gifts/new",
        "/staff/people",
        "/staff/supporters",
        "/staff/members",
        "/staff/campaigns",
        "/staff/events",
        "/staff/outbox",
        "/staff/audit",
        "/staff/team",
    ] {
        client.goto(&app.url(path)).await.expect(path);
        audit(&browser, &axe, path, &mut found).await;
    }
    for (path, form) in [
        ("/staff/gifts/new", "form[action='/staff/gifts/new']"),
        ("/staff/campaigns", "form[action='/staff/campaigns']"),
        ("/staff/team", "form[action='/staff/team']"),
    ] {
        client.goto(&app.url(path)).await.expect(path);
        click(&browser, &format!("{form} button[type=submit]")).await;
        wait_for(&browser, ".error").await;
        audit(&browser, &axe, &format!("{path} refused"), &mut found).await;
    }

    // Screenshots to look at: every page a reader meets, at a small phone, a common phone and
    // a desktop; and the staff dashboard.
    let shots = [
        ("home", app.url("/")),
        ("join", app.url("/join")),
        ("gifts", app.url("/gifts")),
        ("thanks", app.url("/donate/thanks")),
        ("widget-framed", framed.origin.clone()),
        ("widget-embedded", embedded.origin.clone()),
        ("staff-dashboard", app.url("/staff")),
    ];
    for (width, height) in [(320, 1200), (390, 1200), (1280, 1000)] {
        client.set_window_size(width, height).await.expect("window size");
        for (name, url) in &shots {
            client.goto(url).await.expect(name);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let overflow = client
                .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
                .await
                .expect("overflow");
            if overflow.as_i64().unwrap_or(0) > 0 {
                found.push(format!("{name} at {width} px is wider than the window by {overflow} px"));
            }
            let path = browser.screenshot(&format!("look-{name}-{width}.png")).await;
            println!("{name} at {width} px: {}", path.display());
        }
    }
    browser.stop().await;
    assert!(found.is_empty(), "accessibility problems:\n{}", found.join("\n"));
    down.running.stop().await;
    app.running.stop().await;
}

async fn donate(app: &TestApp, fields: &[(&str, &str)]) -> (u16, String) {
    let response = app.http.post(app.url("/donate")).form(fields).send().await.expect("POST /donate");
    (response.status().as_u16(), response.text().await.expect("page"))
}

/// SPEC §4: what was typed comes back in the typed field, the chosen button stays chosen, and
/// the problems are summarised GOV.UK's way.
async fn an_amount_that_is_no_button_comes_back_typed_with_a_summary_that_links_to_each_field(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let home = app.get("/").await.text().await.expect("home");
    assert!(home.contains("<title>Fighting fund · "), "no error in a fresh page's title");
    assert!(home.contains(r#"value="25" checked"#), "the middle once amount starts chosen");
    assert!(home.contains("Continue to payment"), "a neutral button without JavaScript");
    for amount in ["abc", "0", "12.345", "100000", "-5"] {
        let (status, page) = donate(&app, &[("amount", amount), ("email", "reader@example.org")]).await;
        assert_eq!(status, 422, "{amount}");
        assert!(page.contains(&format!(r#"name="amount_other" aria-invalid="true" aria-describedby="amount-error" inputmode="decimal" autocomplete="off" placeholder=" " value="{amount}""#)), "{amount} comes back typed: {page}");
        assert!(page.contains(r#"id="amount-choose-other" name="amount" value="" checked"#), "Other is chosen");
        assert!(page.contains("<title>Error: "), "the title says so");
        assert!(page.contains(r##"<li><a href="#amount-other">"##), "the summary links to the typed field");
    }
    let (status, page) =
        donate(&app, &[("amount", "10"), ("frequency", "monthly"), ("email", "nope"), ("place", &"x".repeat(81))])
            .await;
    assert_eq!(status, 422);
    assert!(page.contains(r#"value="10" checked"#) && page.contains(r#"value="monthly" checked"#), "choices kept");
    assert!(!page.contains(r#"value="" checked"#), "a button amount stays a button");
    let email = page.find(r##"href="#email""##).expect("the email in the summary");
    let place = page.find(r##"href="#place""##).expect("the town in the summary");
    assert!(email < place, "in the form's order");
    assert!(page.contains(r#"<div class="invalid">"#), "each field in error is marked");
    let (status, _) = donate(&app, &[("amount", "25"), ("amount_other", "30"), ("email", "reader@example.org")]).await;
    assert_eq!(status, 303, "a typed amount wins");
    let twice = [("amount", "25"), ("email", "reader@example.org"), ("anonymous", "on"), ("anonymous", "on")];
    let (status, page) = donate(&app, &twice).await;
    assert_eq!(status, 422);
    assert!(page.contains(r##"<li><a href="#anonymous">"##), "a box sent twice is in the summary: {page}");
    app.running.stop().await;
}

/// Issue 18: every page, the fallbacks too, has the site's language, title and viewport.
async fn pages_that_cannot_be_shown_keep_the_site_s_frame(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), 404);
    let squeezed = app.http.get(app.url("/no/such/page")).header("Accept-Encoding", "gzip").send().await.expect("GET");
    assert_eq!(squeezed.headers()["content-encoding"], "gzip", "a 404 is compressed like any page");
    let checkout = app.get("/demo/checkout/don_00000000000000000000000000000000").await;
    assert_eq!(checkout.status(), 404);
    for page in [missing.text().await.expect("404"), checkout.text().await.expect("no such checkout")] {
        for part in [r#"<html lang="en-GB">"#, "<title>", r#"name="viewport""#, r#"name="description""#, "favicon.svg"]
        {
            assert!(page.contains(part), "{part} in {page}");
        }
    }
    let icon = app.get("/favicon.ico").await;
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    // A forged form and a method a path does not take: framed too.
    let forged = app.http.post(app.url("/staff/login")).form(&[("email", "a@b.example")]).send();
    let visited = app.http.put(app.url("/donate")).send();
    for (response, status) in [(forged, 403), (visited, 405)] {
        let response = response.await.expect("answer");
        assert_eq!(response.status(), status);
        let page = response.text().await.expect("page");
        for part in [r#"<html lang="en-GB">"#, r#"name="viewport""#, "favicon.svg", r#"<a href="/">"#] {
            assert!(page.contains(part), "{part} in the {status}: {page}");
        }
    }
    // One weak tag for the brotli, gzip and plain bodies, varying with Accept-Encoding, 304s too.
    for path in ["/widget/fund", "/widget/fund.js"] {
        let mut tags = Vec::new();
        for encoding in ["gzip", "br", "identity"] {
            let response = app.http.get(app.url(path)).header("Accept-Encoding", encoding).send().await.expect("GET");
            let coded = response.headers().get("content-encoding").map(|v| v.as_bytes());
            assert_eq!(coded, (encoding != "identity").then_some(encoding.as_bytes()), "{path} in {encoding}");
            assert_eq!(response.headers()["vary"], "accept-encoding", "{path} in {encoding}");
            tags.push(response.headers()["etag"].to_str().expect("ETag").to_owned());
        }
        assert!(tags.iter().all(|t| t.starts_with("W/\"") && *t == tags[0]), "{path}: {tags:?}");
        let again = app.http.get(app.url(path)).header("If-None-Match", &tags[0]).header("Accept-Encoding", "br");
        let again = again.send().await.expect("GET");
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["vary"], "accept-encoding", "{path}: a 304 varies as its 200 does");
    }
    app.running.stop().await;
}

/// A page that could not be shown, in the site's frame: its language, viewport, style sheet and
/// masthead, not bare text (issue 18).
pub fn assert_framed(what: &str, page: &str) {
    for part in [r#"<html lang="en-GB">"#, r#"name="viewport""#, r#"rel="stylesheet""#, r#"<header><a href="/">"#] {
        assert!(page.contains(part), "{part} in {what}: {page}");
    }
}

/// Issue 18: the pages share one style sheet at an address named after its contents, compressed
/// and kept a year, so that a page's own bytes stay about 2 KB.
async fn every_page_links_the_one_style_sheet_that_browsers_keep_a_year(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let mut hrefs = Vec::new();
    for path in ["/", "/join", "/gifts", "/donate/thanks", "/account", "/no/such/page"] {
        let page = app.get(path).await.text().await.expect("page");
        let link = r#"<link rel="stylesheet" href=""#;
        let start = page.find(link).unwrap_or_else(|| panic!("a style sheet on {path}")) + link.len();
        let href = page[start..].split('"').next().expect("the href").to_owned();
        assert!(!page.contains(":root{"), "{path} does not carry the shared rules itself");
        hrefs.push(href);
    }
    assert!(hrefs.iter().all(|h| *h == hrefs[0]), "one sheet for every page: {hrefs:?}");
    let href = &hrefs[0];
    assert!(href.starts_with("/assets/site-") && href.ends_with(".css"), "{href}");
    let sheet = app.http.get(app.url(href)).header("Accept-Encoding", "br").send().await.expect("GET");
    assert_eq!(sheet.status(), 200);
    assert_eq!(sheet.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(sheet.headers()["content-encoding"], "br");
    assert_eq!(sheet.headers()["cache-control"], "public, max-age=31536000, immutable");
    let tag = sheet.headers()["etag"].to_str().expect("ETag").to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");
    let again = app.http.get(app.url(href)).header("If-None-Match", &tag).send().await.expect("GET");
    assert_eq!(again.status(), 304);
    assert_eq!(app.get("/assets/site-0.css").await.status(), 404, "only the current sheet's address");
    app.running.stop().await;
}

/// Issue 18: the thanks page says what was given, found by the Checkout Session that Stripe
/// names on the way back; a session that is not one of ours gets thanks, never a sum, and is
/// promised no receipt.
async fn the_thanks_page_names_the_gift_that_stripe_sends_back(engine: Engine) {
    let stripe = crate::stripe::FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    for (fields, session, named) in [
        (&[("amount", "25"), ("frequency", "once")][..], "cs_test_fake_1", "Thank you for your gift of £25.00</h1>"),
        (
            &[("amount", ""), ("amount_other", "7.50"), ("frequency", "monthly")][..],
            "cs_test_fake_2",
            "Thank you for your £7.50 every month</h1>",
        ),
    ] {
        let mut form = fields.to_vec();
        form.push(("email", "reader@example.org"));
        let (status, _) = donate(&app, &form).await;
        assert_eq!(status, 303);
        let page = app.get(&format!("/donate/thanks?session_id={session}")).await.text().await.expect("thanks");
        assert!(page.contains(named), "{named} in {page}");
        assert_eq!(page.matches("<h1>").count(), 1, "one heading");
        assert!(page.contains("A receipt is on its way"), "a known gift is promised its receipt");
    }
    for nonsense in ["nonsense", "cs_test_fake_99", "cs_%00", "cs_demo_don_00000000000000000000000000000000"] {
        let page = app.get(&format!("/donate/thanks?session_id={nonsense}")).await.text().await.expect("thanks");
        assert!(page.contains("<h1>Thank you</h1>"), "{nonsense}: neutral thanks in {page}");
        assert!(page.contains("Make it monthly"), "{nonsense}: the offer to give monthly");
        assert!(!page.contains("receipt") && !page.contains("within a minute"), "{nonsense}: promises nothing: {page}");
    }
    app.running.stop().await;
}
