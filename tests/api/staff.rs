//! The staff area over HTTP: sessions, CSRF, roles, login limits, and what staff do there.

use std::collections::HashMap;

use coopfund::domain::ReceivedEvent;
use coopfund::store::{AttemptLimit, Delivery, Tried};
use reqwest::Response;

use crate::browser::Driven;
use crate::helpers::{Engine, NOW, TestApp, TestDb, ok, run_cli_with_input};
use crate::on_both_engines;
use crate::outbox_claims::{execute, scalar};
use crate::stripe::{CardGift, FakeStripe};

on_both_engines!(
    every_staff_route_needs_a_session,
    signing_in_rotates_the_session_and_the_cookie_is_locked_down,
    forms_without_the_csrf_token_are_refused_and_change_nothing,
    roles_are_enforced_on_every_route_not_only_in_menus,
    the_sixth_wrong_password_locks_the_account_even_with_the_right_one,
    behind_a_proxy_each_client_address_has_its_own_login_limit,
    finance_enters_a_cheque_and_the_public_figures_move_at_once,
    an_admin_changes_the_target_and_the_public_figures_follow,
    a_kept_event_is_processed_again_and_counts_once,
    the_people_supporters_members_and_outbox_pages_show_what_is_stored,
    in_a_browser_finance_enters_a_cheque_and_downloads_the_gifts,
    an_admin_adds_promotes_and_removes_staff_and_a_removed_session_ends,
    thirty_wrong_passwords_at_once_get_five_checks,
    a_crowd_from_one_address_gets_fifty_checks_and_no_more,
    a_removed_account_added_again_does_not_revive_its_old_session,
    strangers_cannot_grow_the_database,
    staff_pages_carry_protective_headers_and_are_not_compressed,
);

pub const PASSWORD: &str = "correct horse battery staple";

/// Adds a member of staff through the CLI, as an operator does.
pub fn add_staff(env: &HashMap<&'static str, String>, email: &str, role: &str) {
    ok(run_cli_with_input(env, &["staff", "add", "--email", email, "--role", role], &format!("{PASSWORD}\n")));
}

/// The cookie named `name` that a response sets, as `name=value`.
fn cookie_named(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// The staff session cookie a response sets, as `name=value`.
fn session_cookie(response: &Response) -> Option<String> {
    cookie_named(response, "coopfund_staff")
}

fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf_token\" value=\"").expect("a csrf_token field") + 25;
    page[start..].split('"').next().expect("a token").to_owned()
}

/// A browser-like client of the staff area: keeps its cookie and puts the CSRF token in forms.
pub struct StaffSession {
    http: reqwest::Client,
    base: String,
    pub cookie: String,
    pub csrf: String,
}

impl StaffSession {
    /// Opens the login page: a signed CSRF cookie and its token, no session yet.
    pub async fn open(base: &str) -> StaffSession {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let page = http.get(format!("{base}/staff/login")).send().await.expect("GET login");
        assert_eq!(page.status(), 200);
        assert_eq!(session_cookie(&page), None, "no session before signing in");
        let cookie = cookie_named(&page, "coopfund_login").expect("the login form's CSRF cookie");
        let csrf = csrf_in(&page.text().await.expect("login page"));
        StaffSession { http, base: base.to_owned(), cookie, csrf }
    }

    pub async fn sign_in(base: &str, email: &str) -> StaffSession {
        let mut session = StaffSession::open(base).await;
        let response = session.log_in(email, PASSWORD).await;
        assert_eq!(response.status(), 303, "signed in as {email}");
        session.cookie = session_cookie(&response).expect("a new session at login");
        session.csrf = csrf_in(&session.get("/staff").await.text().await.expect("dashboard"));
        session
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Response {
        self.post("/staff/login", &[("email", email), ("password", password)]).await
    }

    /// Logs in through a proxy that says the client is `forwarded_for`.
    pub async fn log_in_from(&self, email: &str, password: &str, forwarded_for: &str) -> Response {
        let fields = [("email", email), ("password", password), ("csrf_token", &self.csrf)];
        let request = self.http.post(format!("{}/staff/login", self.base)).header("cookie", &self.cookie);
        request.header("x-forwarded-for", forwarded_for).form(&fields).send().await.expect("POST")
    }

    pub async fn get(&self, path: &str) -> Response {
        let request = self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie);
        request.send().await.expect("GET")
    }

    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("page")
    }

    /// Posts a form with this session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &self.csrf));
        self.post_exactly(path, &fields).await
    }

    /// Posts exactly these fields: no token unless given.
    pub async fn post_exactly(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let request = self.http.post(format!("{}{path}", self.base)).header("cookie", &self.cookie).form(fields);
        request.send().await.expect("POST")
    }
}

fn staffed_app_env(app: &TestApp) {
    add_staff(&app.env, "viewer@paper.example", "viewer");
    add_staff(&app.env, "finance@paper.example", "finance");
    add_staff(&app.env, "admin@paper.example", "admin");
}

const GET_ROUTES: [&str; 14] = [
    "/staff",
    "/staff/gifts",
    "/staff/gifts.csv",
    "/staff/gifts/new",
    "/staff/gifts/gift-1",
    "/staff/people",
    "/staff/supporters",
    "/staff/members",
    "/staff/members.csv",
    "/staff/campaigns",
    "/staff/events",
    "/staff/outbox",
    "/staff/audit",
    "/staff/team",
];

const POST_ROUTES: [&str; 9] = [
    "/staff/gifts/new",
    "/staff/campaigns",
    "/staff/campaigns/fighting-fund-2026-11",
    "/staff/campaigns/fighting-fund-2026-11/close",
    "/staff/events/evt_1/process",
    "/staff/outbox/1/retry",
    "/staff/team",
    "/staff/team/1",
    "/staff/logout",
];

fn redirects_to_login(response: &Response) -> bool {
    response.status() == 303 && response.headers().get("location").is_some_and(|l| l == "/staff/login")
}

async fn every_staff_route_needs_a_session(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    for path in GET_ROUTES {
        assert!(redirects_to_login(&app.get(path).await), "GET {path}");
    }
    let anonymous = StaffSession::open(&app.base).await;
    for path in POST_ROUTES {
        let response = anonymous.post(path, &[("amount", "50"), ("method", "cheque")]).await;
        assert!(redirects_to_login(&response), "POST {path}: {}", response.status());
    }
    assert_eq!(app.raised().await, 0);
    app.running.stop().await;
}

async fn signing_in_rotates_the_session_and_the_cookie_is_locked_down(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let session = StaffSession::open(&app.base).await;
    let wrong = session.log_in("viewer@paper.example", "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.expect("page").contains("do not match an account"));
    let response = session.log_in("Viewer@Paper.example", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let set = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap_or("")).collect::<Vec<_>>();
    let cookie = set.iter().find(|c| c.starts_with("coopfund_staff=")).expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/staff"] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");
    let signed_in = session_cookie(&response).expect("cookie");
    assert_ne!(signed_in, session.cookie, "a new session id at login");
    let old = StaffSession { cookie: session.cookie.clone(), ..StaffSession::open(&app.base).await };
    assert!(redirects_to_login(&old.get("/staff").await), "the id from before login is worthless");

    let staff = StaffSession { cookie: signed_in, ..old };
    assert!(staff.page("/staff").await.contains("viewer@paper.example"));
    let staff = StaffSession { csrf: csrf_in(&staff.page("/staff").await), ..staff };
    assert!(redirects_to_login(&staff.post("/staff/logout", &[]).await));
    assert!(redirects_to_login(&staff.get("/staff").await), "signed out");
    app.running.stop().await;
}

async fn forms_without_the_csrf_token_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let staff = StaffSession::sign_in(&app.base, "admin@paper.example").await;
    let cheque =
        [("campaign", "fighting-fund-2026-11"), ("amount", "50"), ("method", "cheque"), ("received_on", "2026-11-17")];
    assert_eq!(staff.post_exactly("/staff/gifts/new", &cheque).await.status(), 403, "no token");
    let mut forged = cheque.to_vec();
    forged.push(("csrf_token", "0000"));
    assert_eq!(staff.post_exactly("/staff/gifts/new", &forged).await.status(), 403, "a wrong token");
    let other = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    forged.pop();
    forged.push(("csrf_token", &other.csrf));
    assert_eq!(staff.post_exactly("/staff/gifts/new", &forged).await.status(), 403, "another session's token");
    assert_eq!(staff.post_exactly("/staff/campaigns/fighting-fund-2026-11/close", &[]).await.status(), 403);
    let login = StaffSession::open(&app.base).await;
    let no_token = [("email", "admin@paper.example"), ("password", PASSWORD)];
    assert_eq!(login.post_exactly("/staff/login", &no_token).await.status(), 403, "the login form too");
    assert_eq!(app.raised().await, 0);
    assert_eq!(app.get_json("/api/campaigns/current").await["status"], "open");
    app.running.stop().await;
}

async fn roles_are_enforced_on_every_route_not_only_in_menus(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let viewer = StaffSession::sign_in(&app.base, "viewer@paper.example").await;
    let finance = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let admin = StaffSession::sign_in(&app.base, "admin@paper.example").await;
    for path in ["/staff", "/staff/gifts", "/staff/people", "/staff/members", "/staff/campaigns", "/staff/events"] {
        assert_eq!(viewer.get(path).await.status(), 200, "a viewer reads {path}");
    }
    assert!(!viewer.page("/staff").await.contains("/staff/gifts/new\""), "no entry link for a viewer");
    for path in ["/staff/gifts.csv", "/staff/members.csv", "/staff/gifts/new"] {
        assert_eq!(viewer.get(path).await.status(), 403, "a viewer cannot GET {path}");
        assert_eq!(finance.get(path).await.status(), 200, "finance can GET {path}");
    }
    let cheque =
        [("campaign", "fighting-fund-2026-11"), ("amount", "50"), ("method", "cheque"), ("received_on", "2026-11-17")];
    assert_eq!(viewer.post("/staff/gifts/new", &cheque).await.status(), 403);
    assert_eq!(viewer.post("/staff/outbox/1/retry", &[]).await.status(), 403);
    assert_eq!(viewer.post("/staff/events/evt_1/process", &[]).await.status(), 403);
    let change = [("target", "1"), ("ends_on", "2026-11-30")];
    for who in [&viewer, &finance] {
        assert_eq!(who.post("/staff/campaigns/fighting-fund-2026-11", &change).await.status(), 403);
        assert_eq!(who.post("/staff/campaigns/fighting-fund-2026-11/close", &[]).await.status(), 403);
        assert_eq!(who.post("/staff/campaigns", &[("title", "X"), ("target", "1")]).await.status(), 403);
    }
    assert_eq!(app.raised().await, 0);
    assert_eq!(app.get_json("/api/campaigns/current").await["target_pence"], 1_800_000);
    assert_eq!(admin.get("/staff/gifts/new").await.status(), 200, "admin may do what finance may");
    app.running.stop().await;
}

async fn the_sixth_wrong_password_locks_the_account_even_with_the_right_one(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let session = StaffSession::open(&app.base).await;
    for attempt in 1..=5 {
        assert_eq!(session.log_in("finance@paper.example", &format!("guess {attempt}")).await.status(), 401);
    }
    let locked = session.log_in("finance@paper.example", PASSWORD).await;
    assert_eq!(locked.status(), 429, "the right password after five wrong ones");
    assert!(locked.text().await.expect("page").contains("Wait 15 minutes"));
    assert_eq!(session.log_in("admin@paper.example", PASSWORD).await.status(), 303, "other accounts unaffected");
    app.running.stop().await;
}

/// Behind nginx, the per-address limit counts the address nginx saw (the last in
/// `X-Forwarded-For`), not the proxy's own; without `CLIENT_IP_SOURCE` the header is ignored,
/// so that no client can choose the address it is counted under.
async fn behind_a_proxy_each_client_address_has_its_own_login_limit(engine: Engine) {
    let behind_nginx = [("CLIENT_IP_SOURCE", "RightmostXForwardedFor".to_owned())];
    for (settings, limited) in [(&behind_nginx[..], true), (&[][..], false)] {
        let app = TestApp::spawn_configured(TestDb::new(engine).await, NOW, settings).await;
        staffed_app_env(&app);
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::minutes(15);
        for n in 0..50 {
            let account = format!("staff-login:guess{n}@elsewhere.example");
            let limits = [
                AttemptLimit { key: &account, most: 5 },
                AttemptLimit { key: "staff-login-from:203.0.113.9", most: 50 },
            ];
            app.running.state.store.count_attempt(&limits, since, now).await.expect("counted").expect("under");
        }
        let from = async |forwarded_for| {
            let session = StaffSession::open(&app.base).await;
            session.log_in_from("admin@paper.example", PASSWORD, forwarded_for).await.status()
        };
        let (blocked, other) = if limited { (429, 303) } else { (303, 303) };
        assert_eq!(from("198.51.100.1, 203.0.113.9").await, blocked, "the address nginx saw is counted");
        assert_eq!(from("203.0.113.9, 198.51.100.7").await, other, "an address the client wrote is not");
        app.running.stop().await;
    }
}

async fn finance_enters_a_cheque_and_the_public_figures_move_at_once(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let staff = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let bad = staff
        .post("/staff/gifts/new", &[("campaign", "fighting-fund-2026-11"), ("amount", "-3"), ("method", "barter")])
        .await;
    assert_eq!(bad.status(), 422);
    let page = bad.text().await.expect("page");
    assert!(page.contains("id=\"amount-error\"") && page.contains("id=\"method-error\""), "{page}");
    assert!(page.contains("value=\"-3\""), "input kept");

    let token = crate::staff_records::form_token(&staff).await;
    let cheque = [
        ("campaign", "fighting-fund-2026-11"),
        ("amount", "50"),
        ("method", "cheque"),
        ("received_on", "2026-11-16"),
        ("email", "reader@example.org"),
        ("name", "Rosa Reader"),
        ("note", "cheque no. 100123"),
        ("form_token", token.as_str()),
    ];
    let entered = staff.post("/staff/gifts/new", &cheque).await;
    assert_eq!(entered.status(), 303);
    let gift_page = entered.headers()["location"].to_str().expect("location").to_owned();
    assert!(gift_page.starts_with("/staff/gifts/gift-"), "{gift_page}");
    assert_eq!(app.raised().await, 5_000, "the public figures moved at once");
    let detail = staff.page(&gift_page).await;
    assert!(detail.contains("£50.00") && detail.contains("Your receipt R-2026-000001"), "{detail}");

    let gifts = staff.page("/staff/gifts?q=ROSA").await;
    assert!(gifts.contains("Rosa Reader") && gifts.contains("cheque no. 100123"), "{gifts}");
    assert!(staff.page("/staff/gifts?q=nobody").await.contains("0 gifts"));
    assert_eq!(staff.get("/staff/gifts?from=yesterday").await.status(), 422, "a bad date is shown, not a 400");
    let csv = staff.get("/staff/gifts.csv?method=cheque").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("csv");
    assert!(csv.starts_with("reference,date,amount,refunded,campaign,method,name,email,note\r\n"), "{csv}");
    assert!(
        csv.contains(",50.00,0.00,fighting-fund-2026-11,cheque,Rosa Reader,reader@example.org,cheque no. 100123\r\n")
    );
    app.open_share_issue("500", "2026-11-30");
    let to_shares =
        [("campaign", "share-issue"), ("amount", "50"), ("method", "cheque"), ("received_on", "2026-11-16")];
    let refused = staff.post("/staff/gifts/new", &to_shares).await;
    assert_eq!(refused.status(), 422, "share capital comes only through allotment");
    assert!(refused.text().await.expect("page").contains("Choose one of the funds"));
    assert_eq!(app.get_json("/api/campaigns/share-issue").await["raised_pence"], 0);
    let audit = staff.page("/staff/audit").await;
    assert!(audit.contains("finance@paper.example") && audit.contains("gift.add"), "{audit}");
    assert!(staff.page("/staff").await.contains("£50.00"), "the dashboard shows today's figures");
    app.running.stop().await;
}

async fn an_admin_changes_the_target_and_the_public_figures_follow(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let admin = StaffSession::sign_in(&app.base, "admin@paper.example").await;
    let change = [("target", "20000.50"), ("ends_on", "2026-11-30")];
    assert_eq!(admin.post("/staff/campaigns/fighting-fund-2026-11", &change).await.status(), 303);
    assert_eq!(app.get_json("/api/campaigns/current").await["target_pence"], 2_000_050);
    assert!(admin.page("/staff/campaigns").await.contains("value=\"20000.50\""), "the form keeps the pence");
    let refused =
        admin.post("/staff/campaigns/fighting-fund-2026-11", &[("target", "20000"), ("ends_on", "2026-10-01")]).await;
    assert_eq!(refused.status(), 422);
    let created = [
        ("title", "Share issue"),
        ("target", "50000"),
        ("starts_on", "2026-11-01"),
        ("ends_on", "2026-12-31"),
        ("kind", "shares"),
    ];
    assert_eq!(admin.post("/staff/campaigns", &created).await.status(), 303);
    assert_eq!(app.get_json("/api/campaigns/share-issue").await["target_pence"], 5_000_000);
    let duplicate = admin.post("/staff/campaigns", &created).await;
    assert_eq!(duplicate.status(), 422);
    assert!(duplicate.text().await.expect("page").contains("already exists"));
    let open =
        [("title", "Open issue"), ("target", ""), ("starts_on", "2026-11-01"), ("ends_on", ""), ("kind", "shares")];
    assert_eq!(admin.post("/staff/campaigns", &open).await.status(), 303, "a share issue may be open-ended");
    let issue = app.get_json("/api/campaigns/open-issue").await;
    assert!(issue["target_pence"].is_null() && issue["ends_on"].is_null(), "{issue}");
    let listed = admin.page("/staff/campaigns").await;
    assert!(listed.contains("2026-11-01 to no last day"), "{listed}");
    let no_target = [("title", "Appeal"), ("target", ""), ("starts_on", "2026-11-01"), ("ends_on", "2026-11-30")];
    let refused = admin.post("/staff/campaigns", &no_target).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.expect("page").contains("a fund needs a target"));
    let cleared = admin.post("/staff/campaigns/fighting-fund-2026-11", &[("target", ""), ("ends_on", "")]).await;
    assert_eq!(cleared.status(), 422, "a fund keeps its target and last day");
    assert_eq!(app.get_json("/api/campaigns/current").await["target_pence"], 2_000_050);
    assert_eq!(admin.post("/staff/campaigns/fighting-fund-2026-11/close", &[]).await.status(), 303);
    let closed = app.get_json("/api/campaigns/fighting-fund-2026-11").await;
    assert_eq!((closed["ends_on"].as_str(), closed["status"].as_str()), (Some("2026-11-16"), Some("closed")));
    let audit = admin.page("/staff/audit").await;
    assert!(audit.contains("campaign.change") && audit.contains("campaign.create"), "{audit}");
    app.running.stop().await;
}

async fn a_kept_event_is_processed_again_and_counts_once(engine: Engine) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn_with_stripe(engine, NOW, &stripe).await;
    staffed_app_env(&app);
    // An event an earlier version could not read, kept as unparsed; this version can.
    let gift = CardGift::new("kept", 2_500).paid(None);
    let kept = ReceivedEvent {
        id: "evt_kept_paid".to_owned(),
        kind: "checkout.session.completed".to_owned(),
        created: NOW.parse().expect("instant"),
        payload: gift.to_string(),
    };
    let store = &app.running.state.store;
    store.record_unparsed_event(&kept, "unknown field", NOW.parse().expect("instant")).await.expect("kept");
    let finance = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let events = finance.page("/staff/events").await;
    assert!(events.contains("evt_kept_paid") && events.contains("unparsed") && events.contains("Process again"));
    let again = finance.post("/staff/events/evt_kept_paid/process", &[]).await;
    assert_eq!(again.status(), 303);
    assert!(
        finance.page(again.headers()["location"].to_str().expect("back")).await.contains("evt_kept_paid: processed")
    );
    let twice = finance.post("/staff/events/evt_kept_paid/process", &[]).await;
    assert!(finance.page(twice.headers()["location"].to_str().expect("back")).await.contains("already processed"));
    assert_eq!(app.deliver(&gift).await, 200, "Stripe's own retry changes nothing either");
    assert_eq!(app.raised().await, 2_500, "counted once");
    assert!(!finance.page("/staff/events").await.contains("Process again"), "nothing left to look at");
    assert!(finance.page("/staff/audit").await.contains("event.process"));
    app.running.stop().await;
}

async fn the_people_supporters_members_and_outbox_pages_show_what_is_stored(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let form = [("amount", "10"), ("frequency", "monthly"), ("email", "sam@example.org"), ("name", "Sam Supporter")];
    let donated = app.http.post(app.url("/donate")).form(&form).send().await.expect("donate");
    let checkout = donated.headers()["location"].to_str().expect("location").to_owned();
    let paid = app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay");
    assert_eq!(paid.status(), 303);
    let join = [
        ("name", "Ada Lovelace"),
        ("address_line1", "1 Mill Lane"),
        ("town", "Leeds"),
        ("postcode", "LS1 4AP"),
        ("email", "sam@example.org"),
        ("amount", "100"),
        ("declaration", "yes"),
    ];
    let applied = app.http.post(app.url("/join")).form(&join).send().await.expect("join");
    let checkout = applied.headers()["location"].to_str().expect("location").to_owned();
    assert_eq!(app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay").status(), 303);

    let staff = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let people = staff.page("/staff/people?q=SAM").await;
    assert!(
        people.contains("sam@example.org") && people.contains("active") && people.contains("no. 1, 100 shares"),
        "{people}"
    );
    let supporters = staff.page("/staff/supporters").await;
    assert!(supporters.contains("Sam Supporter") && supporters.contains("£10.00"), "{supporters}");
    let members = staff.page("/staff/members").await;
    assert!(members.contains("Ada Lovelace") && members.contains("1 Mill Lane, Leeds, LS1 4AP"), "{members}");
    let register = staff.get("/staff/members.csv").await.text().await.expect("csv");
    assert!(register.starts_with("member_number,name,address,email,shares,amount_paid,entered_on,ceased_on\r\n1,"));

    let store = &app.running.state.store;
    // The first receipt, held by a worker of the test's own whatever the service did with it.
    let id = 1;
    let hold = "UPDATE outbox SET status = 'pending', claimed_by = $1, claimed_until = '2999-01-01' WHERE id = 1";
    execute(&app.db, hold, "staff-test").await;
    let failed = Delivery::Failed { retry_at: None, error: "550 mailbox unavailable".to_owned() };
    store.emails_tried("staff-test", &[Tried { id, delivery: failed }]).await.expect("fail it");
    let outbox = staff.page("/staff/outbox").await;
    assert!(outbox.contains("550 mailbox unavailable") && outbox.contains("Retry"), "{outbox}");
    assert_eq!(staff.post(&format!("/staff/outbox/{id}/retry"), &[]).await.status(), 303);
    let emails = store.unsent_emails(10).await.expect("emails");
    assert!(emails.iter().all(|e| e.status != "failed"), "back in the queue");
    app.running.stop().await;
}

/// The journey of SPEC §8 in a real browser: sign in, enter a £50 cheque, see the dashboard
/// and the public figures move by £50, download the gifts CSV.
async fn in_a_browser_finance_enters_a_cheque_and_downloads_the_gifts(engine: Engine) {
    use fantoccini::Locator;
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let browser = Driven::start(1280, 900).await;
    let client = &browser.client;
    client.goto(&app.url("/staff")).await.expect("open /staff");
    assert!(client.current_url().await.expect("url").path().ends_with("/staff/login"), "signed out: the login");
    client.find(Locator::Css("#email")).await.expect("email").send_keys("finance@paper.example").await.expect("type");
    client.find(Locator::Css("#password")).await.expect("password").send_keys(PASSWORD).await.expect("type");
    client.find(Locator::Css("button[type=submit]")).await.expect("button").click().await.expect("sign in");
    let raised = client.wait().for_element(Locator::Css("#raised")).await.expect("the dashboard");
    assert_eq!(raised.text().await.expect("text"), "£0");

    client.goto(&app.url("/staff/gifts/new")).await.expect("entry form");
    client.find(Locator::Css("#amount")).await.expect("amount").send_keys("50").await.expect("type");
    client.find(Locator::Css("#note")).await.expect("note").send_keys("cheque no. 100123").await.expect("type");
    client.find(Locator::Css("main button[type=submit]")).await.expect("button").click().await.expect("record");
    let heading = Locator::XPath("//h1[starts-with(., 'Gift gift-')]");
    client.wait().for_element(heading).await.expect("the gift's own page");

    client.goto(&app.url("/staff")).await.expect("dashboard");
    let raised = client.find(Locator::Css("#raised")).await.expect("raised").text().await.expect("text");
    assert_eq!(raised, "£50");
    assert_eq!(app.raised().await, 5_000, "the public JSON moved by £50");
    let shot = browser.screenshot(&format!("staff-dashboard-{engine:?}.png")).await;
    eprintln!("dashboard screenshot: {}", shot.display());
    client.set_window_size(390, 844).await.expect("phone width");
    browser.screenshot(&format!("staff-dashboard-phone-{engine:?}.png")).await;

    // The browser's own download of the CSV link, with its session cookie.
    client.set_window_size(1280, 900).await.expect("desktop width");
    client.goto(&app.url("/staff/gifts")).await.expect("gifts");
    browser.screenshot(&format!("staff-gifts-{engine:?}.png")).await;
    let href = client.find(Locator::Css("a[download]")).await.expect("CSV link").attr("href").await.expect("href");
    let script = "const done = arguments[arguments.length - 1];
                  fetch(arguments[0]).then(r => r.text()).then(done, e => done('failed: ' + e));";
    let csv = client.execute_async(script, vec![href.unwrap_or_default().into()]).await.expect("fetch the CSV");
    let csv = csv.as_str().unwrap_or_default().to_owned();
    assert!(csv.starts_with("reference,date,amount,refunded,campaign,method,name,email,note\r\n"), "{csv}");
    assert!(csv.contains(",50.00,0.00,fighting-fund-2026-11,cheque,,,cheque no. 100123\r\n"), "{csv}");

    // A share issue with no target or last day, beside the fund.
    ok(app.cli(&["campaign", "create", "--kind", "shares", "--title", "Share issue", "--starts", "2026-11-01"]));
    client.goto(&app.url("/staff/campaigns")).await.expect("campaigns");
    browser.screenshot(&format!("staff-campaigns-{engine:?}.png")).await;
    let listed = client.source().await.expect("the page");
    assert!(listed.contains("2026-11-01 to no last day") && listed.contains("no closing date"), "{listed}");
    browser.stop().await;
    app.running.stop().await;
}

async fn an_admin_adds_promotes_and_removes_staff_and_a_removed_session_ends(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let admin = StaffSession::sign_in(&app.base, "admin@paper.example").await;
    let finance = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    assert_eq!(finance.get("/staff/team").await.status(), 403, "only admins manage staff");
    let add = [("email", "new@paper.example"), ("role", "viewer"), ("password", PASSWORD)];
    assert_eq!(finance.post("/staff/team", &add).await.status(), 403);
    let short =
        admin.post("/staff/team", &[("email", "new@paper.example"), ("role", "viewer"), ("password", "short")]).await;
    assert_eq!(short.status(), 422);
    assert!(short.text().await.expect("page").contains("at least 12 characters"));
    assert_eq!(admin.post("/staff/team", &add).await.status(), 303);
    let again = admin.post("/staff/team", &add).await;
    assert_eq!(again.status(), 422, "one account per address");
    let newcomer = StaffSession::sign_in(&app.base, "new@paper.example").await;
    assert_eq!(newcomer.get("/staff/gifts/new").await.status(), 403, "a viewer");

    let team = admin.page("/staff/team").await;
    let id_of = |email: &str| -> String {
        let row = team.split("<tr>").find(|r| r.contains(email)).expect("a row");
        let start = row.find("/staff/team/").expect("a form") + "/staff/team/".len();
        row[start..].split('"').next().expect("an id").to_owned()
    };
    let newcomer_id = id_of("new@paper.example");
    assert_eq!(admin.post(&format!("/staff/team/{newcomer_id}"), &[("role", "finance")]).await.status(), 303);
    assert!(redirects_to_login(&newcomer.get("/staff").await), "a change of role ends the session");
    let newcomer = StaffSession::sign_in(&app.base, "new@paper.example").await;
    assert_eq!(newcomer.get("/staff/gifts/new").await.status(), 200, "the new role applies");
    assert_eq!(admin.post(&format!("/staff/team/{newcomer_id}"), &[("role", "remove")]).await.status(), 303);
    assert!(redirects_to_login(&newcomer.get("/staff").await), "a removed account's session ends");
    assert_eq!(StaffSession::open(&app.base).await.log_in("new@paper.example", PASSWORD).await.status(), 401);

    let admin_id = id_of("viewer@paper.example").parse::<i64>().expect("an id") + 2;
    let own = admin.post(&format!("/staff/team/{admin_id}"), &[("role", "viewer")]).await;
    assert_eq!(own.status(), 403, "nobody demotes or removes themselves");
    assert!(admin.page("/staff").await.contains("admin@paper.example (admin)"));
    let audit = admin.page("/staff/audit").await;
    for action in ["staff.add", "staff.role", "staff.remove"] {
        assert!(audit.contains(action), "{action} missing from the audit log");
    }
    // Their row stays for the audit log; the address may be given an account again.
    assert_eq!(admin.post("/staff/team", &add).await.status(), 303);
    assert_eq!(StaffSession::open(&app.base).await.log_in("new@paper.example", PASSWORD).await.status(), 303);
    app.running.stop().await;
}

/// 30 wrong passwords for one account at once: each is counted before its check, so exactly
/// five are checked (and answered 401) and the rest refused unchecked (429).
async fn thirty_wrong_passwords_at_once_get_five_checks(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let session = StaffSession::open(&app.base).await;
    let attempts = (0..30).map(|n| {
        let session = &session;
        async move { session.log_in("finance@paper.example", &format!("guess number {n}")).await.status().as_u16() }
    });
    let mut statuses = futures::future::join_all(attempts).await;
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 25), "{statuses:?}");
    let counted =
        scalar(&app.db, "SELECT COUNT(*) FROM attempts WHERE key = 'staff-login:finance@paper.example'").await;
    assert_eq!(counted, 5, "five attempts counted in the database");
    assert_eq!(session.log_in("finance@paper.example", PASSWORD).await.status(), 429, "locked");
    app.running.stop().await;
}

/// 150 logins at once from one address, each for a different account: 50 are checked, a few
/// at a time, and the other hundred refused without hashing.
async fn a_crowd_from_one_address_gets_fifty_checks_and_no_more(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    let session = StaffSession::open(&app.base).await;
    let attempts = (0..150).map(|n| {
        let session = &session;
        async move { session.log_in(&format!("guess{n}@elsewhere.example"), "not a password").await.status().as_u16() }
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    // A request that waited too long for a turn is told to come back (503), unchecked and
    // uncounted; on a slow machine a few may.
    let busy = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(checked + refused + busy, 150, "{statuses:?}");
    assert!(checked <= 50 && checked + busy >= 50, "{statuses:?}");
    let counted = scalar(&app.db, "SELECT COUNT(*) FROM attempts WHERE key = 'staff-login-from:127.0.0.1'").await;
    assert_eq!(counted, i64::try_from(checked).expect("a count"), "exactly the checked attempts are counted");
    app.running.stop().await;
}

/// Remove Bob, add Bob again with a new password: Bob's old cookie leads to the login page.
/// A change of role ends the account's sessions too (SPEC §8).
async fn a_removed_account_added_again_does_not_revive_its_old_session(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    add_staff(&app.env, "bob@paper.example", "admin");
    let admin = StaffSession::sign_in(&app.base, "admin@paper.example").await;
    let bob = StaffSession::sign_in(&app.base, "bob@paper.example").await;
    assert_eq!(bob.get("/staff/team").await.status(), 200);
    let team = admin.page("/staff/team").await;
    let row = team.split("<tr>").find(|r| r.contains("bob@paper.example")).expect("Bob's row");
    let start = row.find("/staff/team/").expect("a form") + "/staff/team/".len();
    let bob_id = row[start..].split('"').next().expect("an id").to_owned();
    assert_eq!(admin.post(&format!("/staff/team/{bob_id}"), &[("role", "remove")]).await.status(), 303);
    let new_password = "a brand new passphrase for bob";
    let again = [("email", "bob@paper.example"), ("role", "admin"), ("password", new_password)];
    assert_eq!(admin.post("/staff/team", &again).await.status(), 303);
    for path in ["/staff/team", "/staff"] {
        assert!(redirects_to_login(&bob.get(path).await), "Bob's old cookie on {path}");
    }

    let mut bob = StaffSession::open(&app.base).await;
    let signed_in = bob.log_in("bob@paper.example", new_password).await;
    assert_eq!(signed_in.status(), 303);
    bob.cookie = session_cookie(&signed_in).expect("a session");
    assert_eq!(bob.get("/staff/team").await.status(), 200, "the new password works");
    let team = admin.page("/staff/team").await;
    let row = team.split("<tr>").find(|r| r.contains("bob@paper.example")).expect("Bob's row");
    let start = row.find("/staff/team/").expect("a form") + "/staff/team/".len();
    let bob_id = row[start..].split('"').next().expect("an id").to_owned();
    assert_eq!(admin.post(&format!("/staff/team/{bob_id}"), &[("role", "viewer")]).await.status(), 303);
    assert!(redirects_to_login(&bob.get("/staff").await), "a new role ends the session");
    app.running.stop().await;
}

/// No session is stored for a login page, an address too long for any account is refused
/// before anything is counted, and the purge removes expired sessions and old attempts.
async fn strangers_cannot_grow_the_database(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    for _ in 0..200 {
        let page = app.get("/staff/login").await;
        assert_eq!(page.status(), 200);
        assert_eq!(session_cookie(&page), None);
    }
    assert_eq!(
        scalar(&app.db, "SELECT COUNT(*) FROM sessions WHERE area = 'staff'").await,
        0,
        "no session for a login page"
    );

    let session = StaffSession::open(&app.base).await;
    let huge = format!("{}@example.org", "a".repeat(1_000_000 - 12));
    let refused = session.log_in(&huge, "whatever it is").await;
    assert_eq!(refused.status(), 422);
    let too_long = format!("{}@example.org", "a".repeat(243));
    assert_eq!(session.log_in(&too_long, "whatever it is").await.status(), 422, "255 characters");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM attempts").await, 0, "nothing counted");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM attempt_keys").await, 0, "nothing stored");

    assert_eq!(session.log_in("viewer@paper.example", "wrong password").await.status(), 401);
    let _signed_in = StaffSession::sign_in(&app.base, "viewer@paper.example").await;
    let store = &app.running.state.store;
    let now = chrono::Utc::now();
    store.purge_expired(now, now - chrono::Duration::days(1)).await.expect("purge");
    let failure = scalar(&app.db, "SELECT COUNT(*) FROM attempts").await;
    assert_eq!(failure, 2, "a recent failure stays, under its account and its address");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM sessions WHERE area = 'staff'").await, 1, "a live session stays");
    let later = now + chrono::Duration::days(2);
    store.purge_expired(later, later - chrono::Duration::days(1)).await.expect("purge");
    for table in ["attempts", "attempt_keys", "sessions"] {
        assert_eq!(scalar(&app.db, &format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table} purged");
    }
    app.running.stop().await;
}

/// SPEC §8's headers on staff pages (the login page, a page, an export), no compression of
/// staff HTML (BREACH), `nosniff` on public pages, and the widget still frameable.
async fn staff_pages_carry_protective_headers_and_are_not_compressed(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    staffed_app_env(&app);
    let staff = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let expected = [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ];
    let login = app.http.get(app.url("/staff/login")).header("accept-encoding", "gzip").send().await.expect("GET");
    for response in [login, staff.get("/staff/gifts?q=x").await, staff.get("/staff/gifts.csv").await] {
        for (name, value) in expected {
            assert_eq!(response.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
        }
        assert!(response.headers().get("strict-transport-security").is_none(), "plain http in tests");
    }
    let request = staff.http.get(app.url("/staff/gifts?q=x")).header("cookie", &staff.cookie);
    let page = request.header("accept-encoding", "gzip").send().await.expect("GET");
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("content-encoding").is_none(), "staff HTML is never compressed");

    let home = app.http.get(app.url("/")).header("accept-encoding", "gzip").send().await.expect("GET /");
    assert_eq!(home.headers()["x-content-type-options"], "nosniff");
    assert_eq!(home.headers()["content-encoding"], "gzip", "public pages are still compressed");
    let widget = app.get("/widget/fund").await;
    assert_eq!(widget.status(), 200);
    assert!(widget.headers().get("x-frame-options").is_none(), "the widget stays frameable");
    assert_eq!(widget.headers()["x-content-type-options"], "nosniff");
    app.running.stop().await;
}
