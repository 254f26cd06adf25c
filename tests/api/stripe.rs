//! A local stand-in for the Stripe API and for Stripe's webhook deliveries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
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

/// Answers `POST /v1/checkout/sessions` with a session shaped like Stripe's, and remembers each request.
pub struct FakeStripe {
    pub base: String,
    pub sessions: Arc<Mutex<Vec<CreatedSession>>>,
    /// What `GET /v1/charges` lists: Stripe's record of payments.
    pub charges: Arc<Mutex<Vec<Value>>>,
    /// Invoice → the `last_payment_error` of its PaymentIntent, for `GET /v1/invoice_payments`.
    pub declines: Arc<Mutex<HashMap<String, Value>>>,
}

#[derive(Clone, Default)]
struct Records {
    sessions: Arc<Mutex<Vec<CreatedSession>>>,
    charges: Arc<Mutex<Vec<Value>>>,
    declines: Arc<Mutex<HashMap<String, Value>>>,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let records = Records::default();
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/charges", get(list_charges))
            .route("/v1/invoice_payments", get(list_invoice_payments))
            .with_state(records.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake Stripe");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeStripe { base, sessions: records.sessions, charges: records.charges, declines: records.declines }
    }

    pub fn created(&self) -> Vec<CreatedSession> {
        self.sessions.lock().expect("lock").clone()
    }
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
