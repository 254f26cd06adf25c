//! Readers' own page (SPEC §10, issue 17): sign-in by emailed link through a real SMTP server,
//! the page with every gift and receipt, receipts again, the statement, consent and export.

use std::time::{Duration, Instant};

use coopfund::domain::account::SignInToken;
use coopfund::domain::{EmailAddress, Notice};
use reqwest::Response;
use serde_json::Value;

use crate::helpers::{Engine, NOW, TestApp, TestDb, ok};
use crate::on_both_engines;
use crate::smtp::{Received, SmtpSink};
use crate::stripe::{CardGift, FakeStripe};

on_both_engines!(
    a_reader_signs_in_by_link_and_finds_every_gift_with_its_receipt,
    a_link_works_once_for_thirty_minutes_and_only_for_a_known_address,
    a_member_changes_their_details_and_the_register_takes_them_at_once,
    the_statement_sums_what_the_ledger_holds_and_shows_each_refund,
    an_erased_reader_is_found_nowhere_and_every_figure_stays,
    strangers_visiting_the_sign_in_pages_store_nothing,
    a_member_confirms_or_rejects_what_they_typed_when_buying_more_shares,
    every_form_of_the_page_needs_its_token_and_takes_each_field_once,
    the_readers_page_is_private_as_the_staff_pages_are,
    staff_see_a_person_as_they_see_themselves_and_only_finance_sends_a_link,
    the_link_goes_to_the_address_on_record_and_forms_take_only_what_they_say,
    a_sent_sign_in_link_leaves_no_token_in_any_table,
);

pub async fn app_with_smtp(engine: Engine, smtp: &SmtpSink) -> TestApp {
    let settings = [
        ("SMTP_URL", smtp.url()),
        ("MAIL_FROM", "Fighting Fund <fund@paper.example>".to_owned()),
        ("ORG_NAME", "Morning Star Readers".to_owned()),
        ("ORG_REGISTRATION", "Registered society no. 1234R".to_owned()),
    ];
    TestApp::spawn_configured(TestDb::new(engine).await, NOW, &settings).await
}

/// A browser of `/account`: keeps its cookie and puts the CSRF token in forms.
pub(crate) struct ReaderBrowser {
    http: reqwest::Client,
    base: String,
    /// The session's cookie and the signed-out forms' signed cookie, as `name=value` pairs.
    cookies: [String; 2],
    pub(crate) csrf: String,
}

const COOKIES: [&str; 2] = ["coopfund_reader=", "coopfund_reader_form="];

fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(name))
        .map(str::to_owned)
}

pub(crate) fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf_token\" value=\"").expect("a csrf_token field") + 25;
    page[start..].split('"').next().expect("a token").to_owned()
}

impl ReaderBrowser {
    pub(crate) async fn open(app: &TestApp) -> ReaderBrowser {
        let mut browser = ReaderBrowser {
            http: app.http.clone(),
            base: app.base.clone(),
            cookies: Default::default(),
            csrf: String::new(),
        };
        let page = browser.page("/account").await;
        assert!(page.contains("Email me a link"), "{page}");
        browser.csrf = csrf_in(&page);
        browser
    }

    fn keep(&mut self, response: &Response) {
        for (kept, name) in self.cookies.iter_mut().zip(COOKIES) {
            if let Some(set) = set_cookie(response, name) {
                *kept = set.split(';').next().unwrap_or_default().to_owned();
            }
        }
    }

    fn cookie(&self) -> String {
        self.cookies.iter().filter(|c| !c.is_empty()).cloned().collect::<Vec<_>>().join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> Response {
        let response =
            self.http.get(format!("{}{path}", self.base)).header("cookie", self.cookie()).send().await.expect("GET");
        self.keep(&response);
        response
    }

    pub(crate) async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("page")
    }

    /// Posts a form with this session's CSRF token.
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut fields = fields.to_vec();
        let csrf = self.csrf.clone();
        fields.push(("csrf_token", &csrf));
        self.post_exactly(path, &fields).await
    }

    /// Posts a body exactly as written (with this session's CSRF token added), for bytes a
    /// browser's form encoding would escape.
    pub(crate) async fn post_raw(&mut self, path: &str, body: &str) -> Response {
        let body = format!("{body}&csrf_token={}", self.csrf);
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let response = request.send().await.expect("POST");
        self.keep(&response);
        response
    }

    /// Posts a form with this session's CSRF token through a proxy that says the client is
    /// `forwarded_for` (heeded with `CLIENT_IP_SOURCE=RightmostXForwardedFor`).
    pub(crate) async fn post_from(&mut self, path: &str, fields: &[(&str, &str)], forwarded_for: &str) -> Response {
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &self.csrf));
        let request = self.http.post(format!("{}{path}", self.base)).header("cookie", self.cookie());
        let response = request.header("x-forwarded-for", forwarded_for).form(&fields).send().await.expect("POST");
        self.keep(&response);
        response
    }

    pub(crate) async fn post_exactly(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let request = self.http.post(format!("{}{path}", self.base)).header("cookie", self.cookie()).form(fields);
        let response = request.send().await.expect("POST");
        self.keep(&response);
        response
    }
}

/// Gives through the demo gateway, as a reader does in the browser.
pub(crate) async fn give(app: &TestApp, fields: &[(&str, &str)]) {
    let answered = app.http.post(app.url("/donate")).form(fields).send().await.expect("donate");
    let checkout = answered.headers()["location"].to_str().expect("to the payment page").to_owned();
    let paid = app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay");
    assert_eq!(paid.status(), 303);
}

fn subject(message: &Received) -> String {
    message.parsed().subject().unwrap_or_default().to_owned()
}

/// The path of the sign-in link in the newest sign-in email to arrive (under PUBLIC_BASE_URL).
pub fn link_in(received: &[Received]) -> String {
    let message = received.iter().rev().find(|m| subject(m).starts_with("Your sign-in link")).expect("a link email");
    let text = message.parsed().body_text(0).expect("a text part").into_owned();
    let start = text.find("http://127.0.0.1:8080/account/signin/").expect("a link") + "http://127.0.0.1:8080".len();
    text[start..].split_whitespace().next().expect("the link").to_owned()
}

async fn a_reader_signs_in_by_link_and_finds_every_gift_with_its_receipt(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    give(&app, &[("amount", "25"), ("email", "reader@example.org"), ("marketing_consent", "on")]).await;
    let cheque = ["gift", "add", "--campaign", "fighting-fund-2026-11", "--amount", "40", "--method", "cheque"];
    ok(app.cli(
        &[&cheque[..], &["--date", "2026-11-12", "--email", "Reader@Example.org", "--reference", "881"]].concat(),
    ));
    give(&app, &[("amount", "10"), ("email", "other@example.org")]).await;
    let receipts = smtp.wait_for(3, Duration::from_secs(10)).await;
    let own = receipts.iter().find(|m| m.to == ["reader@example.org"]).expect("the reader's receipt");
    let text = own.parsed().body_text(0).expect("text").into_owned();
    assert!(text.contains("http://127.0.0.1:8080/account"), "a receipt links to the reader's page: {text}");

    let mut reader = ReaderBrowser::open(&app).await;
    let asked = reader.post("/account/link", &[("email", "READER@example.org")]).await;
    assert_eq!(asked.status(), 200);
    assert!(asked.text().await.expect("page").contains("If we know that address, a link is on its way"));
    let received = smtp.wait_for(4, Duration::from_secs(10)).await;
    let path = link_in(&received);
    let link = received.iter().rev().find(|m| subject(m).starts_with("Your sign-in link")).expect("a link email");
    assert_eq!(link.to, ["reader@example.org"], "to the address on record, not as typed");
    assert_eq!(path.len(), "/account/signin/".len() + 64, "256 bits in hex: {path}");
    let before = reader.cookies[0].clone();

    let button = reader.page(&path).await;
    assert!(button.contains(">Sign in</button>"), "{button}");
    assert!(reader.page("/account").await.contains("Email me a link"), "a GET signs no one in");
    reader.csrf = csrf_in(&button);
    let signed_in = reader.post(&path, &[]).await;
    assert_eq!((signed_in.status().as_u16(), signed_in.headers()["location"].to_str().ok()), (303, Some("/account")));
    let cookie = set_cookie(&signed_in, COOKIES[0]).expect("a new session at sign-in");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/account"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert_ne!(reader.cookies[0], before, "a new session id at sign-in");
    let page = reader.page("/account").await;
    reader.csrf = csrf_in(&page);
    assert!(page.contains("Signed in as reader@example.org"), "as on record, not as typed: {page}");
    for fact in ["£25.00", "£40.00", "R-2026-000001", "R-2026-000002", "the Fighting fund", "cheque", "online"] {
        assert!(page.contains(fact), "{fact} on the page: {page}");
    }
    assert!(!page.contains("R-2026-000003"), "another reader's receipt is not listed");
    let again = reader.post(&path, &[]).await;
    assert_eq!(again.status(), 410, "a link works once");

    let receipt = reader.page("/account/receipts/R-2026-000001").await;
    assert!(receipt.contains("£25.00") && receipt.contains("no Gift Aid") && receipt.contains("1234R"), "{receipt}");
    let other = reader.get("/account/receipts/R-2026-000003").await;
    assert_eq!(other.status(), 404, "another reader's number");
    crate::accessibility::assert_framed("another reader's receipt", &other.text().await.expect("page"));
    let details = [
        ("name", "R Reader"),
        ("address_line1", "1 Road"),
        ("address_line2", ""),
        ("town", "Leeds"),
        ("postcode", "LS1 1AA"),
    ];
    let not_member = reader.post("/account/details", &details).await;
    assert_eq!(not_member.status(), 404, "only a member has register details");
    crate::accessibility::assert_framed("details of no member", &not_member.text().await.expect("page"));
    let resent = reader.post("/account/receipts/R-2026-000001/resend", &[]).await;
    assert_eq!(resent.status(), 303);
    let received = smtp.wait_for(5, Duration::from_secs(10)).await;
    let copies: Vec<_> = received.iter().filter(|m| subject(m).starts_with("Your receipt R-2026-000001")).collect();
    assert_eq!(copies.len(), 2, "sent again");
    let ids: Vec<_> = copies.iter().map(|m| m.parsed().message_id().map(str::to_owned)).collect();
    assert_ne!(ids[0], ids[1], "an email of its own");

    let statement = reader.page("/account/statement/2026").await;
    assert!(statement.contains("£65.00") && statement.contains("no Gift Aid"), "{statement}");
    assert!(statement.contains("Morning Star Readers") && statement.contains("1234R"), "{statement}");
    assert!(reader.page("/account/statement/2025").await.contains("No payments in 2025"));

    assert!(page.contains("name=\"marketing_consent\" value=\"yes\" checked"), "consent given with the gift");
    assert_eq!(reader.post_exactly("/account/consent", &[]).await.status(), 403, "no CSRF token");
    assert_eq!(reader.post("/account/consent", &[]).await.status(), 303);
    let page = reader.page("/account?done=consent").await;
    assert!(page.contains("is saved") && !page.contains("value=\"yes\" checked") && page.contains("no on"), "{page}");

    let export = reader.get("/account/export").await;
    assert_eq!(export.headers()["content-type"], "application/json");
    let export: Value = export.json().await.expect("JSON");
    assert_eq!(export["gifts"].as_array().map(Vec::len), Some(2));
    assert_eq!(export["consent"], false);
    assert_eq!(export["sign_ins"].as_array().map(Vec::len), Some(1));
    assert!(export["emails"].as_array().is_some_and(|e| e.len() == 4), "{export}");
    assert_eq!(export["member"], Value::Null);

    assert_eq!(reader.post("/account/signout", &[]).await.status(), 303);
    assert!(reader.page("/account").await.contains("Email me a link"), "signed out");
    app.running.stop().await;
}

async fn a_link_works_once_for_thirty_minutes_and_only_for_a_known_address(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    give(&app, &[("amount", "25"), ("email", "known@example.org")]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = ReaderBrowser::open(&app).await;
    assert_eq!(reader.post_exactly("/account/link", &[("email", "known@example.org")]).await.status(), 403);
    let bad = reader.post("/account/link", &[("email", "not an address")]).await;
    assert_eq!(bad.status(), 422);

    // The same answer, in the same time, for an address we know and one we don't.
    let (known_status, known_page, _) = timed(&reader, "known@example.org").await;
    let (unknown_status, unknown_page, _) = timed(&reader, "stranger@example.org").await;
    assert_eq!((known_status, strip_csrf(&known_page)), (unknown_status, strip_csrf(&unknown_page)), "the same answer");
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    for n in 0..3 {
        known_times.push(timed(&reader, "known@example.org").await.2);
        unknown_times.push(timed(&reader, &format!("nobody{n}@example.org")).await.2);
    }
    let mean = |t: &[Duration]| t.iter().sum::<Duration>() / 3;
    let (known, unknown) = (mean(&known_times), mean(&unknown_times));
    println!("link request: known {known:?}, unknown {unknown:?}");
    assert!(known.abs_diff(unknown) < Duration::from_millis(50), "known {known:?}, unknown {unknown:?}");
    // Three links an hour for an address: the fourth request and beyond send nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let links = smtp.received().iter().filter(|m| subject(m).starts_with("Your sign-in link")).count();
    assert_eq!(links, 3, "three links, none to the stranger, none beyond the limit");

    // Used, expired, wrong.
    let path = link_in(&smtp.received());
    reader.csrf = csrf_in(&reader.page(&path).await);
    assert_eq!(reader.post(&path, &[]).await.status(), 303);
    let mut other = ReaderBrowser::open(&app).await;
    let used = other.get(&path).await;
    assert_eq!(used.status(), 410, "a used link says so before its button is pressed");
    other.csrf = csrf_in(&used.text().await.expect("page"));
    let reused = other.post(&path, &[]).await;
    assert_eq!(reused.status(), 410);
    assert!(reused.text().await.expect("page").contains("This link has been used or has expired"));
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
    let expired = other.post(&format!("/account/signin/{}", old.as_str()), &[]).await;
    assert_eq!(expired.status(), 410, "31 minutes old");
    assert!(expired.text().await.expect("page").contains("expired"));
    let wrong = other.post(&format!("/account/signin/{}", SignInToken::fresh().as_str()), &[]).await;
    assert_eq!(wrong.status(), 404);
    assert_eq!(other.post("/account/signin/short", &[]).await.status(), 404);
    assert!(other.page("/account").await.contains("Email me a link"), "none of them signed in");
    app.running.stop().await;
}

/// Asks for a link in `browser`'s session: the status, the page and how long the answer took.
async fn timed(browser: &ReaderBrowser, email: &str) -> (u16, String, Duration) {
    let fields = [("email", email), ("csrf_token", browser.csrf.as_str())];
    let request = browser.http.post(format!("{}/account/link", browser.base)).header("cookie", browser.cookie());
    let started = Instant::now();
    let answer = request.form(&fields).send().await.expect("POST");
    let took = started.elapsed();
    (answer.status().as_u16(), answer.text().await.expect("page"), took)
}

/// A page without its CSRF token, which differs per session.
fn strip_csrf(page: &str) -> String {
    page.replace(&csrf_in(page), "")
}

/// Signs `email` in through the emailed link, as a reader does; `sent` emails have arrived before.
pub(crate) async fn signed_in(app: &TestApp, smtp: &SmtpSink, email: &str, sent: usize) -> ReaderBrowser {
    let mut reader = ReaderBrowser::open(app).await;
    assert_eq!(reader.post("/account/link", &[("email", email)]).await.status(), 200);
    let path = link_in(&smtp.wait_for(sent + 1, Duration::from_secs(10)).await);
    reader.csrf = csrf_in(&reader.page(&path).await);
    assert_eq!(reader.post(&path, &[]).await.status(), 303);
    reader.csrf = csrf_in(&reader.page("/account").await);
    reader
}

async fn a_member_changes_their_details_and_the_register_takes_them_at_once(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    let join = [
        ("name", "Ada Lovelace"),
        ("address_line1", "1 Mill Lane"),
        ("town", "Leeds"),
        ("postcode", "LS1 4AP"),
        ("email", "ada@example.org"),
        ("amount", "100"),
        ("declaration", "yes"),
    ];
    let applied = app.http.post(app.url("/join")).form(&join).send().await.expect("join");
    let checkout = applied.headers()["location"].to_str().expect("to the payment page").to_owned();
    assert_eq!(app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay").status(), 303);
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, "ada@example.org", 1).await;
    let page = reader.page("/account").await;
    assert!(page.contains("Member no. 1: 100 shares, £100.00 paid"), "{page}");
    assert!(page.contains("value=\"1 Mill Lane\"") && page.contains("£100.00"), "{page}");

    let moved = [
        ("name", "Ada King"),
        ("address_line1", "2 Canal Street"),
        ("address_line2", ""),
        ("town", "Manchester"),
        ("postcode", "m1 3ab"),
    ];
    assert_eq!(reader.post_exactly("/account/details", &moved).await.status(), 403, "no CSRF token");
    let mut wrong = moved;
    wrong[4].1 = "nowhere!";
    let refused = reader.post("/account/details", &wrong).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert!(page.contains("id=\"postcode-error\"") && page.contains("value=\"2 Canal Street\""), "{page}");
    assert_eq!(reader.post("/account/details", &moved).await.status(), 303);
    let register = ok(app.cli(&["register", "export"]));
    assert!(
        register.contains("1,Ada King,\"2 Canal Street, Manchester, M1 3AB\",ada@example.org,100,100.00"),
        "{register}"
    );
    let store = &app.running.state.store;
    let audit = store.audit_entries(10).await.expect("audit");
    assert!(audit.iter().any(|a| a.detail.contains("changed by the member")), "{audit:?}");
    for path in ["/account/consent", "/account/signout", "/account/receipts/R-2026-000001/resend", "/account/link"] {
        assert_eq!(reader.post_exactly(path, &[]).await.status(), 403, "{path} without its token");
    }

    // Issue 17's outside review, item 3: once she has ceased and erased her data, the audit log
    // keeps the line about her change but neither name nor address, old or new.
    crate::outbox_claims::execute(
        &app.db,
        "UPDATE members SET ceased_on = '2026-11-20' WHERE email = $1",
        "ada@example.org",
    )
    .await;
    assert_eq!(reader.post("/account/erase", &[("confirm", "yes")]).await.status(), 303);
    let audit = store.audit_entries(50).await.expect("audit");
    let details: Vec<String> = audit.iter().map(|a| a.detail.to_lowercase()).collect();
    for text in ["ada lovelace", "ada king", "1 mill lane", "2 canal street", "ls1 4ap", "m1 3ab", "ada@example.org"] {
        assert!(!details.iter().any(|d| d.contains(text)), "{text} in the audit log: {details:?}");
    }
    assert!(audit.iter().any(|a| a.action == "member.details"), "the line itself is kept: {audit:?}");
    app.running.stop().await;
}

async fn the_statement_sums_what_the_ledger_holds_and_shows_each_refund(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let app = crate::receipts::app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    let gift = CardGift::new("stated", 2_500);
    assert_eq!(app.deliver(&gift.paid(None)).await, 200);
    assert_eq!(app.deliver(&gift.refunded(1_000, 1)).await, 200);
    smtp.wait_for(2, Duration::from_secs(10)).await;
    let mut reader = signed_in(&app, &smtp, "jo.bloggs@example.org", 2).await;
    let page = reader.page("/account").await;
    assert!(page.contains("£10.00 refunded"), "{page}");
    let statement = reader.page("/account/statement/2026").await;
    let ledger = app.running.state.store.gift_history(&gift.payment).await.expect("ledger");
    let held: i64 = ledger.iter().map(|row| row.amount.0).sum();
    assert_eq!(held, 1_500);
    let row = "<tr><th>In all</th><td class=\"money\"><strong>£15.00</strong></td></tr>";
    assert!(
        statement.contains(row) && statement.contains("£10.00") && statement.contains("R-2026-000001"),
        "{statement}"
    );
    app.running.stop().await;
}

/// Every text column of every table, with the rows holding any of `needles` (lower case).
pub async fn find_anywhere(url: &str, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&pool)
        .await
        .expect("columns");
        for (table, column) in columns {
            for needle in needles {
                let sql =
                    format!("SELECT COUNT(*) FROM \"{table}\" WHERE INSTR(LOWER(CAST(\"{column}\" AS TEXT)), $1) > 0");
                let n: i64 = sqlx::query_scalar(&sql).bind(needle).fetch_one(&pool).await.expect("search");
                if n > 0 {
                    found.push(format!("{table}.{column}: {needle}"));
                }
            }
        }
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type IN ('text', 'character varying')",
        )
        .fetch_all(&pool)
        .await
        .expect("columns");
        for (table, column) in columns {
            for needle in needles {
                let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE STRPOS(LOWER(\"{column}\"), $1) > 0");
                let n: i64 = sqlx::query_scalar(&sql).bind(needle).fetch_one(&pool).await.expect("search");
                if n > 0 {
                    found.push(format!("{table}.{column}: {needle}"));
                }
            }
        }
    }
    found
}

async fn an_erased_reader_is_found_nowhere_and_every_figure_stays(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let stripe = FakeStripe::start().await;
    let app = crate::receipts::app_with_smtp(TestDb::new(engine).await, &stripe, &smtp).await;
    let form = [
        ("amount", "25"),
        ("email", "Jo.Bloggs@Example.org"),
        ("name", "Jo Bloggs"),
        ("display_name", "Red Jo"),
        ("place", "Hebden Bridge"),
    ];
    assert_eq!(app.http.post(app.url("/donate")).form(&form).send().await.expect("donate").status(), 303);
    let donation = stripe.created().last().and_then(|s| s.field("client_reference_id").map(str::to_owned));
    let gift = CardGift::new("erased", 2_500);
    assert_eq!(app.deliver(&gift.paid(donation.as_deref())).await, 200);
    let cheque = ["gift", "add", "--campaign", "fighting-fund-2026-11", "--amount", "40", "--method", "cheque"];
    let giver =
        ["--date", "2026-11-12", "--email", "jo.bloggs@example.org", "--name", "Jo Bloggs", "--note", "from Jo Bloggs"];
    ok(app.cli(&[&cheque[..], &giver[..]].concat()));
    let join = [
        ("name", "Ada Lovelace"),
        ("address_line1", "1 Mill Lane"),
        ("town", "Leeds"),
        ("postcode", "LS1 4AP"),
        ("email", "ada@example.org"),
        ("amount", "100"),
        ("declaration", "yes"),
    ];
    assert_eq!(app.http.post(app.url("/join")).form(&join).send().await.expect("join").status(), 303);
    let application = stripe.created().last().and_then(|s| s.field("client_reference_id").map(str::to_owned));
    let shares = CardGift::new("ada", 10_000).shares_paid(application.as_deref().expect("an application"));
    assert_eq!(app.deliver(&shares).await, 200);
    smtp.wait_for(3, Duration::from_secs(10)).await;

    let mut ada = signed_in(&app, &smtp, "ada@example.org", 3).await;
    let refused = ada.post("/account/erase", &[("confirm", "yes")]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.expect("page").contains("section 30"), "a member is refused with the reason");

    let mut jo = signed_in(&app, &smtp, "jo.bloggs@example.org", 4).await;
    assert_eq!(jo.post("/account/erase", &[]).await.status(), 422, "not confirmed");
    assert_eq!(jo.post("/account/erase", &[("confirm", "no")]).await.status(), 422, "only a tick erases");
    // A second link, asked for before the erasure and never used (the re-review's input).
    let mut holder = ReaderBrowser::open(&app).await;
    assert_eq!(holder.post("/account/link", &[("email", "jo.bloggs@example.org")]).await.status(), 200);
    let unused = link_in(&smtp.wait_for(6, Duration::from_secs(10)).await);
    let held = find_anywhere(&app.db.url, &["jo.bloggs", "jo bloggs", "red jo", "hebden", "ls6 2ab"]).await;
    for place in
        ["people.email", "payments.email", "offline_gifts.name", "donations.place", "stripe_events.payload: ls6"]
    {
        assert!(held.iter().any(|h| h.starts_with(place)), "{place} held before: {held:?}");
    }
    let before = app.get_json("/api/campaigns/current").await;
    let store = &app.running.state.store;
    let emails_before = store.outbox_counts().await.expect("outbox");
    let erased = jo.post("/account/erase", &[("confirm", "yes")]).await;
    assert_eq!(
        (erased.status().as_u16(), erased.headers()["location"].to_str().ok()),
        (303, Some("/account?done=erased"))
    );
    assert!(jo.page("/account?done=erased").await.contains("Your personal data is erased"), "and signed out");

    // The confirmation goes to the address first, through the outbox; it is the only row that
    // holds it until it has been sent, and then the retention job forgets it too.
    let received = smtp.wait_for(7, Duration::from_secs(10)).await;
    let confirmation = received.last().expect("the confirmation");
    assert_eq!(confirmation.to, ["Jo.Bloggs@Example.org"], "to the address on record, as given with the gift");
    assert!(subject(confirmation).contains("is erased"), "{}", subject(confirmation));
    let text = confirmation.parsed().body_text(0).expect("text").into_owned();
    assert!(!text.to_lowercase().contains("jo bloggs") && !text.contains("Hebden"), "names nothing of theirs: {text}");
    // The outbox's own "sent" write forgets the address: nothing waits for the retention job.
    all_sent(&app).await;
    let found = find_anywhere(&app.db.url, &["jo.bloggs", "jo bloggs", "red jo", "hebden", "ls6 2ab"]).await;
    assert!(found.is_empty(), "still held once the confirmation is sent: {found:?}");
    assert_eq!(holder.get(&unused).await.status(), 410, "a link not yet used reaches no erased record");
    let after = app.get_json("/api/campaigns/current").await;
    assert_eq!(
        (after["raised_pence"].clone(), after["gifts"].clone()),
        (before["raised_pence"].clone(), before["gifts"].clone())
    );
    assert_eq!(after["raised_pence"], 6_500);
    let emails_after = store.outbox_counts().await.expect("outbox");
    let (after, before_count) = (emails_after.pending + emails_after.sent, emails_before.pending + emails_before.sent);
    assert_eq!(after, before_count + 1, "receipts kept, and the confirmation");
    let (gifts, _) = store.search_gifts(&Default::default(), 10, 0).await.expect("gifts");
    assert_eq!(gifts.len(), 2, "the ledger keeps both gifts");
    assert!(find_anywhere(&app.db.url, &["ada@example.org", "ada lovelace"]).await.len() > 1, "the member is kept");
    let audit = store.audit_entries(5).await.expect("audit");
    assert!(audit.iter().any(|a| a.action == "reader.erase"), "{audit:?}");
    app.running.stop().await;
}

/// Issue 16, item 9's kind on the readers' page (found by an outside review): every cookieless
/// visit to `/account` or a sign-in link stored a session for 24 hours. Signed out, the forms'
/// token lives in a signed cookie, so nothing is stored until someone signs in.
async fn strangers_visiting_the_sign_in_pages_store_nothing(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let stranger = reqwest::Client::new();
    for n in 0..30 {
        let path = if n % 3 == 0 { format!("/account/signin/not-a-token-{n}") } else { "/account".to_owned() };
        let response = stranger.get(app.url(&path)).send().await.expect("GET");
        assert!(response.status().is_success() || response.status() == 404, "{path}: {}", response.status());
    }
    assert_eq!(crate::outbox_claims::scalar(&app.db, "SELECT COUNT(*) FROM sessions WHERE area = 'reader'").await, 0);
    // The form still works, and still refuses a post without its cookie.
    let form = stranger.get(app.url("/account")).send().await.expect("form");
    let cookie = form.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_owned();
    assert!(cookie.starts_with("coopfund_reader_form="), "{cookie}");
    let page = form.text().await.expect("page");
    let token = page.split("name=\"csrf_token\" value=\"").nth(1).and_then(|t| t.split('"').next()).expect("token");
    let asked = stranger
        .post(app.url("/account/link"))
        .header("cookie", &cookie)
        .form(&[("email", "a@example.org"), ("csrf_token", token)]);
    assert_eq!(asked.send().await.expect("link").status(), 200);
    let forged = stranger.post(app.url("/account/link")).form(&[("email", "a@example.org"), ("csrf_token", token)]);
    assert_eq!(forged.send().await.expect("forged").status(), 403);
    assert_eq!(crate::outbox_claims::scalar(&app.db, "SELECT COUNT(*) FROM sessions WHERE area = 'reader'").await, 0);
    app.running.stop().await;
}

/// Buys `pounds` of shares through the demo gateway with these register details.
pub async fn buy_shares(app: &TestApp, name: &str, line1: &str, email: &str, pounds: &str) {
    let join = [("name", name), ("address_line1", line1), ("town", "Leeds"), ("postcode", "LS1 4AP"), ("email", email)];
    let form = [&join[..], &[("amount", pounds), ("declaration", "yes")]].concat();
    let applied = app.http.post(app.url("/join")).form(&form).send().await.expect("join");
    let checkout = applied.headers()["location"].to_str().expect("to the payment page").to_owned();
    assert_eq!(app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay").status(), 303);
}

/// SPEC §7 and §10: a purchase under a member's address never rewrites the register; what
/// they typed waits on their page until they take it or leave it, audited as their choice.
async fn a_member_confirms_or_rejects_what_they_typed_when_buying_more_shares(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    buy_shares(&app, "Ada Lovelace", "1 Mill Lane", "ada@example.org", "100").await;
    buy_shares(&app, "Ada King", "2 Canal Street", "ada@example.org", "10").await;
    buy_shares(&app, "Ada K.", "3 Wharf Road", "ADA@example.org", "10").await;
    smtp.wait_for(3, Duration::from_secs(10)).await;
    let mut ada = signed_in(&app, &smtp, "ada@example.org", 3).await;
    let page = ada.page("/account").await;
    assert!(page.contains("You gave: <strong>Ada King, 2 Canal Street"), "{page}");
    assert!(page.contains("You gave: <strong>Ada K., 3 Wharf Road"), "{page}");
    let ids: Vec<String> = page
        .split("action=\"/account/changes/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2, "{page}");
    let first = format!("/account/changes/{}", ids[0]);
    let second = format!("/account/changes/{}", ids[1]);
    assert_eq!(ada.post(&first, &[("decision", "maybe")]).await.status(), 422, "a decision or nothing");
    let not_an_id = ada.post("/account/changes/abc", &[("decision", "accept")]).await;
    assert_eq!(not_an_id.status(), 422, "an id that is no number is the page again, not a bare 400");
    assert_eq!(ada.post(&first, &[("decision", "reject")]).await.status(), 303);
    assert!(ok(app.cli(&["register", "export"])).contains("Ada Lovelace,\"1 Mill Lane"), "kept as it was");
    assert_eq!(ada.post(&first, &[("decision", "accept")]).await.status(), 422, "decided once");
    assert_eq!(ada.post(&second, &[("decision", "accept")]).await.status(), 303);
    let register = ok(app.cli(&["register", "export"]));
    assert!(register.contains("1,Ada K.,\"3 Wharf Road, Leeds, LS1 4AP\",ada@example.org,120,120.00"), "{register}");
    let page = ada.page("/account?done=change-accepted").await;
    assert!(page.contains("The register now has") && !page.contains("You gave:"), "{page}");
    let audit = app.running.state.store.audit_entries(10).await.expect("audit");
    assert!(audit.iter().any(|a| a.detail.contains("rejected by the member")), "{audit:?}");
    assert!(audit.iter().any(|a| a.detail.contains("changed by the member (as typed")), "{audit:?}");
    assert!(app.running.state.store.pending_member_changes().await.expect("pending").is_empty(), "staff see none left");

    // Another reader cannot answer a member's change.
    buy_shares(&app, "Ada Again", "4 Lock Street", "ada@example.org", "10").await;
    let pending = app.running.state.store.pending_member_changes().await.expect("pending");
    give(&app, &[("amount", "5"), ("email", "other@example.org")]).await;
    smtp.wait_for(6, Duration::from_secs(10)).await;
    let mut other = signed_in(&app, &smtp, "other@example.org", 6).await;
    let theirs = format!("/account/changes/{}", pending[0].id);
    assert_eq!(other.post(&theirs, &[("decision", "accept")]).await.status(), 422);
    assert_eq!(app.running.state.store.pending_member_changes().await.expect("pending").len(), 1);
    app.running.stop().await;
}

/// Every form of `/account` is refused without its `csrf_token`, signed in or not, and a field
/// sent twice is a mistake shown on the form (422), not a guess.
async fn every_form_of_the_page_needs_its_token_and_takes_each_field_once(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    buy_shares(&app, "Ada Lovelace", "1 Mill Lane", "ada@example.org", "100").await;
    buy_shares(&app, "Ada King", "2 Canal Street", "ada@example.org", "10").await;
    smtp.wait_for(2, Duration::from_secs(10)).await;
    let mut stranger = ReaderBrowser::open(&app).await;
    let link = format!("/account/signin/{}", SignInToken::fresh().as_str());
    for path in ["/account/link", link.as_str()] {
        assert_eq!(stranger.post_exactly(path, &[("email", "ada@example.org")]).await.status(), 403, "{path}");
    }
    let twice = stranger.post("/account/link", &[("email", "ada@example.org"), ("email", "eve@example.org")]).await;
    assert_eq!(twice.status(), 422, "an address sent twice");
    assert!(twice.text().await.expect("page").contains("more than once"));

    let mut ada = signed_in(&app, &smtp, "ada@example.org", 2).await;
    let page = ada.page("/account").await;
    let forms: Vec<&str> =
        page.split("<form method=\"post\" action=\"").skip(1).filter_map(|f| f.split('"').next()).collect();
    assert!(forms.len() >= 5, "{forms:?}");
    for form in &forms {
        assert_eq!(ada.post_exactly(form, &[("decision", "accept"), ("confirm", "yes")]).await.status(), 403, "{form}");
        let wrong = [("decision", "accept"), ("confirm", "yes"), ("csrf_token", "0123")];
        assert_eq!(ada.post_exactly(form, &wrong).await.status(), 403, "{form} with another token");
    }
    for path in ["/account/receipts/R-2026-000001/resend", "/account/erase"] {
        assert_eq!(ada.post_exactly(path, &[]).await.status(), 403, "{path}");
    }
    let details = [
        ("name", "Ada King"),
        ("name", "Eve"),
        ("address_line1", "2 Canal Street"),
        ("town", "Manchester"),
        ("postcode", "M1 3AB"),
    ];
    let refused = ada.post("/account/details", &details).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.expect("page").contains("id=\"name-error\""));
    let consent = ada.post("/account/consent", &[("marketing_consent", "yes"), ("marketing_consent", "yes")]).await;
    assert_eq!(consent.status(), 422);
    assert!(ok(app.cli(&["register", "export"])).contains("Ada Lovelace"), "nothing changed");
    assert!(ada.page("/account").await.contains("Signed in as ada@example.org"), "still signed in");
    app.running.stop().await;
}

/// The private pages' headers are set one way for `/staff` and `/account`; the reader's cookie
/// is `Secure` behind https and lasts 24 hours from the last request.
async fn the_readers_page_is_private_as_the_staff_pages_are(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let settings = [("SMTP_URL", smtp.url()), ("PUBLIC_BASE_URL", "https://paper.example".to_owned())];
    let app = TestApp::spawn_configured(TestDb::new(engine).await, NOW, &settings).await;
    give(&app, &[("amount", "25"), ("email", "reader@example.org")]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let header = |r: &Response, name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let names = [
        "cache-control",
        "x-frame-options",
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
        "strict-transport-security",
    ];
    let staff = app.get("/staff/login").await;
    let expected: Vec<_> = names.iter().map(|n| header(&staff, n)).collect();
    assert!(expected.iter().all(Option::is_some), "{expected:?}");
    let mut reader = ReaderBrowser::open(&app).await;
    assert_eq!(reader.post("/account/link", &[("email", "reader@example.org")]).await.status(), 200);
    let received = smtp.wait_for(2, Duration::from_secs(10)).await;
    let message = received.last().expect("a link");
    let text = message.parsed().body_text(0).expect("text").into_owned();
    let start = text.find("https://paper.example/account/signin/").expect("a link") + "https://paper.example".len();
    let path = text[start..].split_whitespace().next().expect("the link").to_owned();
    reader.csrf = csrf_in(&reader.page(&path).await);
    let signed_in = reader.post(&path, &[]).await;
    let cookie = set_cookie(&signed_in, COOKIES[0]).expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/account", "Secure", "Max-Age=86400"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    for path in ["/account", "/account/statement/2026", "/account/export", "/account/receipts/R-0"] {
        let response = reader.get(path).await;
        let got: Vec<_> = names.iter().map(|n| header(&response, n)).collect();
        assert_eq!(got, expected, "{path}");
    }
    app.running.stop().await;
}

/// SPEC §6 and §10: every receipt, refund notice and membership email links to the reader's
/// own page, in both its parts.
#[test]
fn every_receipt_refund_and_membership_email_links_to_the_readers_page() {
    use coopfund::domain::Pence;
    use coopfund::mail::{Letterhead, render};
    let from = "Fighting Fund <fund@paper.example>".parse().expect("a mailbox");
    let account_url = "https://paper.example/account";
    let org = Letterhead {
        org_name: "Readers",
        org_registration: "",
        from: &from,
        account_url,
        home_url: "https://paper.example/",
    };
    let day = "2026-11-17".parse().expect("date");
    let notices = [
        Notice::Receipt {
            number: "R-2026-000001".into(),
            amount: Pence(2_500),
            paid_on: day,
            purpose: "a gift".into(),
        },
        Notice::Refund { amount: Pence(1_000), refunded_on: day, purpose: "a gift".into() },
        Notice::Membership {
            number: "R-2026-000002".into(),
            member_number: 1,
            new_member: true,
            shares: 100,
            amount: Pence(10_000),
            allotted_on: day,
            holding_shares: 100,
            holding_amount: Pence(10_000),
            change_pending: true,
        },
    ];
    for notice in &notices {
        let (text, html) = render(notice, &org).expect("rendered");
        assert!(text.contains(account_url), "{notice:?} text: {text}");
        assert!(html.contains(&format!("href=\"{account_url}\"")), "{notice:?} html: {html}");
    }
}

/// SPEC §10: "Staff see the same on a person's page and can send them a sign-in link" — a
/// viewer sees it, only finance sends the link (audited, the address masked).
async fn staff_see_a_person_as_they_see_themselves_and_only_finance_sends_a_link(engine: Engine) {
    use crate::staff::{StaffSession, add_staff};
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    buy_shares(&app, "Ada Lovelace", "1 Mill Lane", "ada@example.org", "100").await;
    give(&app, &[("amount", "25"), ("email", "ada@example.org"), ("marketing_consent", "on")]).await;
    smtp.wait_for(2, Duration::from_secs(10)).await;
    add_staff(&app.env, "viewer@paper.example", "viewer");
    add_staff(&app.env, "finance@paper.example", "finance");
    let viewer = StaffSession::sign_in(&app.base, "viewer@paper.example").await;
    let people = viewer.page("/staff/people").await;
    let start = people.find("href=\"/staff/people/").expect("a link to the person") + 6;
    let path = people[start..].split('"').next().expect("the path").to_owned();
    let person = viewer.page(&path).await;
    for fact in
        ["ada@example.org", "£25.00", "£100.00", "R-2026-000001", "R-2026-000002", "Member no. 1", "1 Mill Lane"]
    {
        assert!(person.contains(fact), "{fact} on the person's page: {person}");
    }
    assert!(person.contains("Yes") && !person.contains("Send a sign-in link"), "{person}");
    let refused = viewer.post("/staff/people/link", &[("email", "ada@example.org")]).await;
    assert_eq!(refused.status(), 403, "a viewer sends no link");
    assert_eq!(viewer.get("/staff/people/999999").await.status(), 404);
    let finance = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    assert!(finance.page(&path).await.contains("Send a sign-in link"));
    let mistyped = finance.post("/staff/people/link", &[("email", "ada at example.org")]).await;
    assert_eq!(mistyped.status(), 422);
    crate::accessibility::assert_framed("a mistyped address", &mistyped.text().await.expect("page"));
    assert_eq!(finance.post("/staff/people/link", &[("email", "ada@example.org")]).await.status(), 303);
    let received = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert!(subject(received.last().expect("the link")).starts_with("Your sign-in link"));
    let audit = app.running.state.store.audit_entries(5).await.expect("audit");
    let sent = audit.iter().find(|a| a.action == "reader.link").expect("audited");
    assert!(sent.actor == "finance@paper.example" && !sent.detail.contains("ada@"), "{sent:?}");
    app.running.stop().await;
}

/// The sign-in link goes to the address as given with the gift, whatever its case on the
/// sign-in form; `marketing_consent=no` is no consent; a value that is not UTF-8 is refused
/// beside its field and changes nothing.
async fn the_link_goes_to_the_address_on_record_and_forms_take_only_what_they_say(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    buy_shares(&app, "Carol Member", "1 Mill Lane", "carol@example.org", "100").await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut carol = signed_in(&app, &smtp, "CAROL@Example.ORG", 1).await;
    let received = smtp.wait_for(2, Duration::from_secs(10)).await;
    let link = received.iter().rev().find(|m| subject(m).starts_with("Your sign-in link")).expect("a link email");
    assert_eq!(link.to, ["carol@example.org"], "to the address on record, not as typed");

    assert_eq!(carol.post("/account/consent", &[("marketing_consent", "on")]).await.status(), 303);
    assert_eq!(carol.post("/account/consent", &[("marketing_consent", "no")]).await.status(), 303);
    let export: Value = carol.get("/account/export").await.json().await.expect("JSON");
    assert_eq!(export["consent"], false, "\"no\" is no consent: {export}");

    let body = "name=Carol%FFMember&address_line1=2+Canal+Street&town=Leeds&postcode=LS1+4AP";
    let refused = carol.post_raw("/account/details", body).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert!(page.contains("id=\"name-error\""), "{page}");
    let register = ok(app.cli(&["register", "export"]));
    assert!(register.contains("1,Carol Member,\"1 Mill Lane, Leeds, LS1 4AP\""), "nothing changed: {register}");
    assert!(!register.contains('\u{FFFD}'), "{register}");

    let donated = app
        .http
        .post(app.url("/donate"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=25&email=dan%40example.org&name=Dan%FF")
        .send()
        .await
        .expect("donate");
    assert_eq!(donated.status(), 422);
    assert!(donated.text().await.expect("page").contains("id=\"name-error\""), "beside the name");
    app.running.stop().await;
}

/// Waits until the outbox has marked every email sent (the SMTP sink receives a message before
/// the worker records it).
async fn all_sent(app: &TestApp) {
    for _ in 0..100 {
        if crate::outbox_claims::scalar(&app.db, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox did not mark every email sent");
}

/// Issue 17's outside review, item 1: a sign-in token is stored only as a hash (SPEC §10), so
/// once its email is sent no table holds the token or its URL, and the link still signs in once.
async fn a_sent_sign_in_link_leaves_no_token_in_any_table(engine: Engine) {
    let smtp = SmtpSink::start().await;
    let app = app_with_smtp(engine, &smtp).await;
    give(&app, &[("amount", "25"), ("email", "known@example.org")]).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let mut reader = ReaderBrowser::open(&app).await;
    assert_eq!(reader.post("/account/link", &[("email", "known@example.org")]).await.status(), 200);
    let path = link_in(&smtp.wait_for(2, Duration::from_secs(10)).await);
    let token = path.trim_start_matches("/account/signin/").to_lowercase();
    all_sent(&app).await;
    let found = find_anywhere(&app.db.url, &[&token, "/account/signin/"]).await;
    assert!(found.is_empty(), "the token is held once its email is sent: {found:?}");
    reader.csrf = csrf_in(&reader.page(&path).await);
    assert_eq!(reader.post(&path, &[]).await.status(), 303, "and the link still signs in");
    app.running.stop().await;
}
