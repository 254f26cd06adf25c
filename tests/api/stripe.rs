//! A local stand-in for the Stripe API and for Stripe's webhook deliveries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const WEBHOOK_SECRET: &str = "whsec_test_secret";

/// One Checkout Session creation as the fake received it.
#[derive(Clone, Debug)]
pub struct CreatedSession {
    pub form: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
}

impl CreatedSession {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A request to the subscriptions or Billing Portal API as the fake received it.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// `POST /v1/subscriptions/sub_…`, `POST /v1/billing_portal/sessions`.
    pub call: String,
    pub form: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
}

impl ApiCall {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A monthly supporter's subscription as the fake Stripe keeps it.
#[derive(Clone, Debug)]
pub struct FakeSubscription {
    pub customer: String,
    /// Pence a month.
    pub amount: i64,
    pub paused_until: Option<i64>,
    pub cancel_at_period_end: bool,
    /// The current period's end (Unix seconds): the next payment.
    pub period_end: i64,
    /// Our donation that started it (`metadata.donation`).
    pub donation: String,
    /// When it started (Unix seconds).
    pub start_date: i64,
    /// `billing_cycle_anchor` (Unix seconds): every billing date keeps its day of the month.
    pub billing_cycle_anchor: i64,
}

/// Answers `POST /v1/checkout/sessions` with a session shaped like Stripe's, and remembers each
/// request; keeps subscriptions, answers their retrieval and updates and Billing Portal sessions
/// with objects shaped like Stripe's (fixtures3.json), and after each update posts a signed
/// `customer.subscription.updated` to the service, as Stripe does.
pub struct FakeStripe {
    pub base: String,
    pub sessions: Arc<Mutex<Vec<CreatedSession>>>,
    /// What `GET /v1/charges` lists: Stripe's record of payments.
    pub charges: Arc<Mutex<Vec<Value>>>,
    /// Invoice → the `last_payment_error` of its PaymentIntent, for `GET /v1/invoice_payments`.
    pub declines: Arc<Mutex<HashMap<String, Value>>>,
    /// The invoice of each `GET /v1/invoice_payments` received, oldest first.
    pub decline_lookups: Arc<Mutex<Vec<String>>>,
    records: Records,
}

#[derive(Clone, Default)]
struct Records {
    sessions: Arc<Mutex<Vec<CreatedSession>>>,
    charges: Arc<Mutex<Vec<Value>>>,
    declines: Arc<Mutex<HashMap<String, Value>>>,
    decline_lookups: Arc<Mutex<Vec<String>>>,
    subscriptions: Arc<Mutex<HashMap<String, FakeSubscription>>>,
    calls: Arc<Mutex<Vec<ApiCall>>>,
    /// While set, every subscription and portal call is refused as Stripe refuses (HTTP 400).
    refusing: Arc<AtomicBool>,
    /// Where webhooks go: the service's `/webhooks/stripe`.
    webhooks: Arc<Mutex<Option<String>>>,
    /// The `created` of the next event sent (Unix seconds), one second later each time.
    clock: Arc<AtomicI64>,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let records = Records::default();
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/charges", get(list_charges))
            .route("/v1/subscriptions/{id}", get(retrieve_subscription).post(update_subscription))
            .route("/v1/billing_portal/sessions", post(create_portal_session))
            .route("/v1/invoice_payments", get(list_invoice_payments))
            .with_state(records.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake Stripe");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeStripe {
            base,
            sessions: records.sessions.clone(),
            charges: records.charges.clone(),
            declines: records.declines.clone(),
            decline_lookups: records.decline_lookups.clone(),
            records,
        }
    }

    pub fn created(&self) -> Vec<CreatedSession> {
        self.sessions.lock().expect("lock").clone()
    }

    /// Keeps `subscription`, as Stripe does once its checkout is paid.
    pub fn subscribe(&self, subscription: &str, state: FakeSubscription) {
        self.records.subscriptions.lock().expect("lock").insert(subscription.to_owned(), state);
    }

    /// Sends each event after a change to `webhooks` (the service's `/webhooks/stripe`), each
    /// `created` one second after the one before, from `created`.
    pub fn deliver_to(&self, webhooks: &str, created: i64) {
        *self.records.webhooks.lock().expect("lock") = Some(webhooks.to_owned());
        self.records.clock.store(created, Ordering::SeqCst);
    }

    /// From now on, refuses every subscription and portal call (`false`: answers again).
    pub fn refuse(&self, refusing: bool) {
        self.records.refusing.store(refusing, Ordering::SeqCst);
    }

    /// The subscription as the fake keeps it now.
    pub fn subscription(&self, id: &str) -> Option<FakeSubscription> {
        self.records.subscriptions.lock().expect("lock").get(id).cloned()
    }

    /// The subscription and portal calls received, oldest first.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.records.calls.lock().expect("lock").clone()
    }
}

/// What Stripe answers a request it refuses.
fn stripe_refusal(status: StatusCode, message: &str) -> Response {
    let body = json!({ "error": { "type": "invalid_request_error", "message": message } });
    (status, axum::Json(body)).into_response()
}

fn record_call(records: &Records, call: String, headers: &HeaderMap, body: &str) -> ApiCall {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let call = ApiCall { call, form, idempotency_key };
    records.calls.lock().expect("lock").push(call.clone());
    call
}

/// The subscription as the API returns it: fixtures3.json's, with this one's facts.
fn subscription_object(id: &str, s: &FakeSubscription) -> Value {
    let mut object = fixture3("subscription");
    fill_subscription(&mut object, id, s);
    object["currency"] = json!("gbp");
    object["status"] = json!("active");
    object["pending_update"] = Value::Null;
    object
}

/// Sets what Stripe's subscription object says of the price, the pause, the cancellation and
/// the period (API 2026-09-30: the period is on the item).
fn fill_subscription(object: &mut Value, id: &str, s: &FakeSubscription) {
    object["id"] = json!(id);
    object["customer"] = json!(s.customer);
    object["start_date"] = json!(s.start_date);
    object["billing_cycle_anchor"] = json!(s.billing_cycle_anchor);
    object["metadata"] = json!({ "kind": "supporter", "donation": s.donation });
    object["cancel_at_period_end"] = json!(s.cancel_at_period_end);
    object["cancel_at"] = if s.cancel_at_period_end { json!(s.period_end) } else { Value::Null };
    object["canceled_at"] = Value::Null;
    object["ended_at"] = Value::Null;
    object["pause_collection"] = match s.paused_until {
        Some(until) => json!({ "behavior": "void", "resumes_at": until }),
        None => Value::Null,
    };
    let item = &mut object["items"]["data"][0];
    item["id"] = json!(format!("si_{id}"));
    item["subscription"] = json!(id);
    item["current_period_end"] = json!(s.period_end);
    item["current_period_start"] = json!(s.period_end - 30 * 86_400);
    item["price"]["id"] = json!(format!("price_{id}_{}", s.amount));
    item["price"]["currency"] = json!("gbp");
    item["price"]["product"] = json!("prod_monthly_support");
    item["price"]["unit_amount"] = json!(s.amount);
    item["price"]["unit_amount_decimal"] = json!(s.amount.to_string());
    item["plan"]["amount"] = json!(s.amount);
    item["plan"]["amount_decimal"] = json!(s.amount.to_string());
    item["plan"]["currency"] = json!("gbp");
}

/// The `customer.subscription.updated` event Stripe sends after a change.
pub fn subscription_updated(event: &str, id: &str, s: &FakeSubscription, created: i64) -> Value {
    let mut e = fixture("customer_subscription_updated_past_due.json");
    e["id"] = json!(event);
    e["created"] = json!(created);
    let object = &mut e["data"]["object"];
    fill_subscription(object, id, s);
    object["status"] = json!("active");
    object["latest_invoice"] = Value::Null;
    e
}

/// The `customer.subscription.deleted` Stripe sends when the subscription ends at the period's
/// end after the reader cancelled it.
pub fn subscription_deleted(event: &str, id: &str, s: &FakeSubscription, created: i64) -> Value {
    let mut e = fixture("customer_subscription_deleted.json");
    e["id"] = json!(event);
    e["created"] = json!(created);
    let object = &mut e["data"]["object"];
    fill_subscription(object, id, s);
    object["status"] = json!("canceled");
    object["canceled_at"] = json!(created);
    object["ended_at"] = json!(created);
    object["cancellation_details"]["reason"] = json!("cancellation_requested");
    object["latest_invoice"] = Value::Null;
    e
}

async fn retrieve_subscription(State(records): State<Records>, Path(id): Path<String>) -> Response {
    if records.refusing.load(Ordering::SeqCst) {
        return stripe_refusal(StatusCode::BAD_REQUEST, "This subscription cannot be changed (refused by the fake).");
    }
    match records.subscriptions.lock().expect("lock").get(&id) {
        Some(s) => axum::Json(subscription_object(&id, s)).into_response(),
        None => stripe_refusal(StatusCode::NOT_FOUND, &format!("No such subscription: '{id}'")),
    }
}

async fn update_subscription(
    State(records): State<Records>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let call = record_call(&records, format!("POST /v1/subscriptions/{id}"), &headers, &body);
    if records.refusing.load(Ordering::SeqCst) {
        return stripe_refusal(StatusCode::BAD_REQUEST, "This subscription cannot be changed (refused by the fake).");
    }
    let updated = {
        let mut subscriptions = records.subscriptions.lock().expect("lock");
        let Some(s) = subscriptions.get_mut(&id) else {
            return stripe_refusal(StatusCode::NOT_FOUND, &format!("No such subscription: '{id}'"));
        };
        if let Some(amount) = call.field("items[0][price_data][unit_amount]").and_then(|a| a.parse().ok()) {
            s.amount = amount;
        }
        match (call.field("pause_collection"), call.field("pause_collection[resumes_at]")) {
            (Some(""), _) => s.paused_until = None,
            (_, Some(until)) => s.paused_until = until.parse().ok(),
            _ => {}
        }
        match call.field("cancel_at_period_end") {
            Some("true") => s.cancel_at_period_end = true,
            Some("false") => s.cancel_at_period_end = false,
            _ => {}
        }
        s.clone()
    };
    let created = records.clock.fetch_add(1, Ordering::SeqCst);
    let n = records.calls.lock().expect("lock").len();
    let event = subscription_updated(&format!("evt_fake_update_{n}"), &id, &updated, created);
    let target = records.webhooks.lock().expect("lock").clone();
    if let Some(target) = target {
        // Stripe sends the webhook after it has answered the API call.
        tokio::spawn(async move {
            let payload = event.to_string();
            let delivered = reqwest::Client::new()
                .post(target)
                .header("Content-Type", "application/json")
                .header("Stripe-Signature", sign(&payload))
                .body(payload)
                .send()
                .await;
            assert_eq!(delivered.map(|r| r.status().as_u16()).ok(), Some(200), "the webhook is taken");
        });
    }
    axum::Json(subscription_object(&id, &updated)).into_response()
}

async fn create_portal_session(State(records): State<Records>, headers: HeaderMap, body: String) -> Response {
    let call = record_call(&records, "POST /v1/billing_portal/sessions".to_owned(), &headers, &body);
    if records.refusing.load(Ordering::SeqCst) {
        return stripe_refusal(StatusCode::BAD_REQUEST, "No configuration provided (refused by the fake).");
    }
    let n = records.calls.lock().expect("lock").len();
    let mut session = fixture3("billing_portal.session");
    session["id"] = json!(format!("bps_fake_{n}"));
    session["customer"] = json!(call.field("customer"));
    session["return_url"] = json!(call.field("return_url"));
    session["url"] = json!(format!("https://billing.stripe.com/p/session/test_fake_{n}"));
    axum::Json(session).into_response()
}

/// An API object of `kind` as fixtures3.json (Stripe's own API fixtures) shows it.
pub fn fixture3(kind: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stripe/fixtures3.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let all: Value = serde_json::from_str(&text).expect("fixtures3.json is JSON");
    all["resources"][kind].clone()
}

async fn list_charges(State(records): State<Records>) -> axum::Json<Value> {
    let data = records.charges.lock().expect("lock").clone();
    axum::Json(json!({ "object": "list", "data": data, "has_more": false, "url": "/v1/charges" }))
}

/// `GET /v1/invoice_payments?invoice=…&expand[0]=data.payment.payment_intent`: the invoice's
/// payment with its PaymentIntent expanded, shaped as in fixtures3.json, failed as `declines` says.
async fn list_invoice_payments(
    State(records): State<Records>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> axum::Json<Value> {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let invoice = query.iter().find(|(k, _)| k == "invoice").map(|(_, v)| v.clone()).unwrap_or_default();
    let expanded = query.iter().any(|(k, v)| k.starts_with("expand") && v == "data.payment.payment_intent");
    records.decline_lookups.lock().expect("lock").push(invoice.clone());
    let resources: Value =
        serde_json::from_str(include_str!("../fixtures/stripe/fixtures3.json")).expect("fixtures3.json");
    let data = match records.declines.lock().expect("lock").get(&invoice) {
        Some(error) => {
            let mut intent = resources["resources"]["payment_intent"].clone();
            intent["id"] = json!(format!("pi_for_{invoice}"));
            intent["currency"] = json!("gbp");
            intent["last_payment_error"] = error.clone();
            let mut payment = resources["resources"]["invoice_payment"].clone();
            payment["id"] = json!(format!("inpay_for_{invoice}"));
            payment["invoice"] = json!(invoice);
            payment["currency"] = json!("gbp");
            payment["status"] = json!("open");
            payment["payment"] = json!({
                "type": "payment_intent",
                "payment_intent": if expanded { intent } else { json!(format!("pi_for_{invoice}")) },
            });
            vec![payment]
        }
        None => Vec::new(),
    };
    axum::Json(json!({ "object": "list", "data": data, "has_more": false, "url": "/v1/invoice_payments" }))
}

async fn create_session(State(records): State<Records>, headers: HeaderMap, body: String) -> axum::Json<Value> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let n = {
        let mut sessions = records.sessions.lock().expect("lock");
        sessions.push(CreatedSession { form: form.clone(), idempotency_key });
        sessions.len()
    };
    let mut session = fixture("checkout_session_completed_payment_paid.json")["data"]["object"].clone();
    let id = format!("cs_test_fake_{n}");
    session["id"] = json!(id);
    session["status"] = json!("open");
    session["payment_status"] = json!("unpaid");
    session["payment_intent"] = Value::Null;
    session["url"] = json!(format!("https://checkout.stripe.com/c/pay/{id}"));
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    session["client_reference_id"] = json!(field("client_reference_id"));
    session["customer_email"] = json!(field("customer_email"));
    axum::Json(session)
}

/// A webhook event from `tests/fixtures/stripe/events` (copied from the shared Stripe fixtures; see their README).
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stripe/events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A `Stripe-Signature` header for `payload`, signed now.
pub fn sign(payload: &str) -> String {
    stripe_webhook::Webhook::generate_test_header(payload, WEBHOOK_SECRET, None)
}

/// The events of one card gift and what may follow it, with ids of their own.
pub struct CardGift {
    pub payment: String,
    key: String,
    amount: i64,
}

impl CardGift {
    pub fn new(key: &str, amount: i64) -> CardGift {
        CardGift { payment: format!("pi_{key}"), key: key.to_owned(), amount }
    }

    pub fn amount(&self) -> i64 {
        self.amount
    }

    pub fn paid(&self, donation: Option<&str>) -> Value {
        let mut e = fixture("checkout_session_completed_payment_paid.json");
        e["id"] = json!(format!("evt_{}_paid", self.key));
        let o = &mut e["data"]["object"];
        o["id"] = json!(format!("cs_{}", self.key));
        o["payment_intent"] = json!(self.payment);
        o["amount_total"] = json!(self.amount);
        o["amount_subtotal"] = json!(self.amount);
        if let Some(donation) = donation {
            o["metadata"]["donation"] = json!(donation);
            o["client_reference_id"] = json!(donation);
        }
        e
    }

    /// The same payment, for shares: the checkout `POST /join` started for `application`.
    pub fn shares_paid(&self, application: &str) -> Value {
        let mut e = self.paid(None);
        let o = &mut e["data"]["object"];
        o["metadata"] = json!({ "kind": "shares", "application": application });
        o["client_reference_id"] = json!(application);
        e
    }

    /// Stripe's running total of refunds on the charge, after one more refund.
    pub fn refunded(&self, total: i64, n: u32) -> Value {
        let mut e = fixture("charge_refunded_partial.json");
        e["id"] = json!(format!("evt_{}_refund_{n}", self.key));
        let o = &mut e["data"]["object"];
        o["id"] = json!(format!("ch_{}", self.key));
        o["payment_intent"] = json!(self.payment);
        o["amount"] = json!(self.amount);
        o["amount_captured"] = json!(self.amount);
        o["amount_refunded"] = json!(total);
        o["refunded"] = json!(total == self.amount);
        e
    }

    /// The charge as Stripe lists it, with `refunded` of it given back.
    pub fn charge(&self, refunded: i64) -> Value {
        let mut charge = self.refunded(refunded, 0)["data"]["object"].clone();
        charge["created"] = json!(chrono::Utc::now().timestamp());
        charge
    }

    pub fn dispute(&self, stage: &str) -> Value {
        let file = match stage {
            "created" => "charge_dispute_created.json",
            "won" => "charge_dispute_closed_won.json",
            _ => "charge_dispute_closed_lost.json",
        };
        let mut e = fixture(file);
        e["id"] = json!(format!("evt_{}_dispute_{stage}", self.key));
        let o = &mut e["data"]["object"];
        o["id"] = json!(format!("du_{}", self.key));
        o["payment_intent"] = json!(self.payment);
        o["charge"] = json!(format!("ch_{}", self.key));
        o["amount"] = json!(self.amount);
        e
    }
}
