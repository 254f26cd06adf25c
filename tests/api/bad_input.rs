//! Bad input of every kind: a clear 4xx, nothing stored, no panic; hostile text shown as text.

use std::time::Duration;

use crate::helpers::{Engine, NOW, TestApp, ok};
use crate::on_both_engines;

on_both_engines!(every_route_refuses_bad_input_with_a_4xx_and_stores_nothing, a_field_sent_twice_is_shown_on_the_form);

/// One bad request: what it is, and how it is sent.
struct Bad {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn bad(what: &'static str, method: &'static str, path: &str, content_type: Option<&'static str>, body: &[u8]) -> Bad {
    Bad { what, method, path: path.to_owned(), content_type, body: body.to_vec() }
}

fn form(what: &'static str, body: &str) -> Bad {
    bad(what, "POST", "/donate", Some("application/x-www-form-urlencoded"), body.as_bytes())
}

fn join(what: &'static str, body: &str) -> Bad {
    bad(what, "POST", "/join", Some("application/x-www-form-urlencoded"), body.as_bytes())
}

async fn every_route_refuses_bad_input_with_a_4xx_and_stores_nothing(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let long = "a".repeat(100_000);
    // Bodies over 1 MiB (413, on every route) are in webhooks.rs, read before the body is sent.
    let requests = vec![
        form("a bad percent-escape", "amount=%ZZ&email=a@example.org&frequency=once"),
        bad(
            "bytes that are not UTF-8",
            "POST",
            "/donate",
            Some("application/x-www-form-urlencoded"),
            b"amount=\xff\xfe",
        ),
        form("a 100 kB email", &format!("amount=5&frequency=once&email={long}@example.org")),
        form("a 100 kB nickname", &format!("amount=5&frequency=once&email=a@example.org&display_name={long}")),
        form("a 100 kB amount", &format!("amount={long}&frequency=once&email=a@example.org")),
        // cargo-fuzz found this one: it overflowed the conversion to pence and panicked.
        form("a 29-digit amount", "amount=76352325476935232547699922224&frequency=once&email=a@example.org"),
        form("an amount in exponent form", "amount=1e9&frequency=once&email=a@example.org"),
        form("a negative amount", "amount=-5&frequency=once&email=a@example.org"),
        form(
            "a nickname read backwards (U+202E)",
            "amount=25&frequency=once&email=a@example.org&display_name=%E2%80%AEevil",
        ),
        form("a place with a zero-width space", "amount=25&frequency=once&email=a@example.org&place=Lo%E2%80%8Bndon"),
        join(
            "a name with a direction override",
            "name=x%E2%80%AEy&address_line1=1+High+St&town=Leeds&postcode=LS1+1AA&email=j@example.org&amount=10&declaration=on",
        ),
        form("a fraction of a penny", "amount=5.001&frequency=once&email=a@example.org"),
        form("an unknown frequency", "amount=5&frequency=weekly&email=a@example.org"),
        form("control characters in a nickname", "amount=5&frequency=once&email=a@example.org&display_name=%00%07"),
        form("no email", "amount=5&frequency=once"),
        bad("JSON instead of a form", "POST", "/donate", Some("application/json"), br#"{"amount": 5}"#),
        bad("no body at all", "POST", "/donate", None, b""),
        bad("the wrong method", "DELETE", "/donate", None, b""),
        bad("an unknown checkout", "GET", "/demo/checkout/don_nope", None, b""),
        bad("paying an unknown checkout", "POST", "/demo/checkout/don_nope/pay", None, b""),
        bad("a NUL in a checkout id", "GET", "/demo/checkout/%00", None, b""),
        bad("a broken escape in a slug", "GET", "/api/campaigns/%E0%A4%A", None, b""),
        bad("a 5 kB slug", "GET", &format!("/api/campaigns/{}", &long[..5000]), None, b""),
        bad("a path of 20 kB", "GET", &format!("/{}", &long[..20_000]), None, b""),
        bad("two versions of the script", "GET", "/widget/fund.js?v=1&v=2", None, b""),
        join("a join form with a 100 kB name", &format!("name={long}&email=a@example.org&amount=10&declaration=yes")),
        join(
            "shares in exponent form",
            "name=A&address_line1=1&town=T&postcode=LS1%204AP&email=a@example.org&amount=1e3",
        ),
        join("a part share", "name=A&address_line1=1&town=T&postcode=LS1%204AP&email=a@example.org&amount=0.5"),
        join("a 29-digit share amount", "name=A&email=a@example.org&amount=76352325476935232547699922224"),
        join("a NUL in an address", "name=A&address_line1=%00&town=T&postcode=LS1%204AP&email=a@example.org&amount=5"),
        bad("JSON to the join form", "POST", "/join", Some("application/json"), br#"{"amount": 5}"#),
        bad("an unknown share checkout", "GET", "/demo/checkout/shr_00000000000000000000000000000000", None, b""),
        bad(
            "a staff login with no session",
            "POST",
            "/staff/login",
            Some("application/x-www-form-urlencoded"),
            b"email=a&password=b",
        ),
        bad(
            "a staff login that is not UTF-8",
            "POST",
            "/staff/login",
            Some("application/x-www-form-urlencoded"),
            b"email=\xff",
        ),
        bad("an unsigned webhook", "POST", "/webhooks/stripe", Some("application/json"), b"{}"),
        bad("a webhook that is not UTF-8", "POST", "/webhooks/stripe", None, b"\xff\xfe"),
    ];
    for request in requests {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
        let mut sent = app.http.request(method, app.url(&request.path)).body(request.body);
        if let Some(content_type) = request.content_type {
            sent = sent.header("Content-Type", content_type);
        }
        let response = sent.send().await.unwrap_or_else(|e| panic!("{}: {e}", request.what));
        let status = response.status();
        assert!(status.is_client_error(), "{}: {status}", request.what);
        let body = response.text().await.unwrap_or_default();
        assert!(!body.trim().is_empty() || status == 405, "{}: a {status} says why", request.what);
    }
    assert_eq!(app.raised().await, 0);
    let state = &app.running.state;
    assert!(state.store.recent_gifts(10).await.expect("gifts").is_empty(), "nothing paid");
    assert_eq!(state.store.outbox_counts().await.expect("outbox").pending, 0, "no email");
    assert!(state.store.register().await.expect("register").is_empty(), "no member");
    assert_eq!(app.get("/healthz").await.status(), 200, "still serving");
    app.running.stop().await;
}

/// `amount=5&amount=10` gets the form again with an error beside the field, like any other
/// mistake, on the public forms and the staff area's; nothing is stored.
async fn a_field_sent_twice_is_shown_on_the_form(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    crate::staff::add_staff(&app.env, "finance@paper.example", "finance");
    let twice = "sent more than once: enter one value";
    let posts = [
        ("/donate", "amount=5&amount=10&frequency=once&email=a@example.org"),
        (
            "/join",
            "name=A&address_line1=1&town=T&postcode=LS1%204AP&email=a@example.org&amount=5&amount=10&declaration=yes",
        ),
    ];
    for (path, body) in posts {
        let response = app
            .http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 422, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap_or("").starts_with("text/html"), "{path}");
        let page = response.text().await.expect("page");
        assert!(page.contains(twice) && page.contains("<form"), "{path}: {page}");
    }
    let staff = crate::staff::StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let gift = [
        ("campaign", "fighting-fund-2026-11"),
        ("amount", "5"),
        ("amount", "10"),
        ("method", "cheque"),
        ("received_on", "2026-11-16"),
    ];
    let response = staff.post("/staff/gifts/new", &gift).await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.expect("page").contains(twice));
    assert_eq!(app.raised().await, 0);
    assert!(app.running.state.store.register().await.expect("register").is_empty());
    app.running.stop().await;
}

/// HTML in a nickname, a place, a name and a campaign title is shown as text on every page,
/// in the widget and in the receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_shown_escaped_everywhere() {
    let app = TestApp::spawn(Engine::Sqlite, NOW).await;
    let title = "<script>alert('title')</script> Fund";
    ok(app.cli(&[
        "campaign",
        "create",
        "--title",
        title,
        "--target",
        "100",
        "--starts",
        "2026-11-01",
        "--ends",
        "2026-11-30",
        "--slug",
        "hostile",
    ]));
    app.current_when(|c| c["slug"] == "hostile").await;
    let fields = [
        ("amount", "5"),
        ("frequency", "once"),
        ("email", "reader@example.org"),
        ("name", "<b>Jane</b>"),
        ("display_name", "<script>alert(1)</script>"),
        ("place", "<img src=x onerror=alert(2)>"),
    ];
    let response = app.http.post(app.url("/donate")).form(&fields).send().await.expect("POST");
    assert_eq!(response.status(), 303);
    let checkout = response.headers()["location"].to_str().expect("location").to_owned();
    let paid = app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay");
    assert_eq!(paid.status(), 303);

    for path in ["/", "/gifts", "/donate/thanks", "/widget/fund", checkout.as_str()] {
        let page = app.get(path).await.text().await.expect("page");
        for raw in ["<script>alert", "<img src=x", "<b>Jane"] {
            assert!(!page.contains(raw), "{path} shows {raw:?} as markup");
        }
    }
    let gifts = app.get("/gifts").await.text().await.expect("gifts");
    assert!(escaped(&gifts, "<script>alert(1)</script>"), "the nickname, as text: {gifts}");
    let widget = app.get("/widget/fund").await.text().await.expect("widget");
    assert!(escaped(&widget, "<script>alert('title')"), "the title, as text: {widget}");

    let mail_dir = std::path::PathBuf::from(&app.env["MAIL_DIR"]);
    let mut receipt = None;
    for _ in 0..100 {
        receipt = std::fs::read_dir(&mail_dir).ok().and_then(|mut d| d.next()).and_then(|e| e.ok()).map(|e| e.path());
        if receipt.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let eml = std::fs::read(receipt.expect("a receipt was written")).expect("read the receipt");
    let message = mail_parser::MessageParser::default().parse(&eml).expect("a valid message");
    let html = message.body_html(0).expect("an HTML part");
    assert!(!html.contains("<script>"), "no markup from the title in the HTML receipt");
    assert!(escaped(&html, "<script>alert('title')"), "the title, as text: {html}");
    app.running.stop().await;
}

/// Whether `page` shows `text` with its markup escaped, in either of the usual forms.
fn escaped(page: &str, text: &str) -> bool {
    let named = text.replace('<', "&lt;").replace('>', "&gt;");
    let numeric = text.replace('<', "&#60;").replace('>', "&#62;");
    [named.clone(), numeric.clone(), named.replace('\'', "&#39;"), numeric.replace('\'', "&#39;")]
        .iter()
        .any(|form| page.contains(form.as_str()))
}
