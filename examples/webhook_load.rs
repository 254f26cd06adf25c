//! Posts distinct, signed, paid `checkout.session.completed` events to a running coopfund as
//! fast as it accepts them, and prints the rate. Loopback only:
//! `webhook_load URL SECRET EVENTS CONCURRENCY [PARKED]`. With PARKED, that many refunds of
//! PaymentIntents that never come are posted first, untimed: they stay parked throughout.

use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value, json};

const TEMPLATE: &str = include_str!("../src/payments/demo_events/gift_paid.json");
const REFUND: &str = include_str!("../tests/fixtures/stripe/events/charge_refunded_partial.json");

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:18181/webhooks/stripe".to_owned());
    let secret = args.next().unwrap_or_else(|| "whsec_bench".to_owned());
    let events: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(32);
    let parked: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let client = reqwest::Client::new();
    if parked > 0 {
        let refund: Value = serde_json::from_str(REFUND).expect("refund event");
        let refunds = (0..parked).map(|i| {
            let mut event = refund.clone();
            event["id"] = json!(format!("evt_bench_parked_{i}"));
            event["data"]["object"]["id"] = json!(format!("ch_bench_parked_{i}"));
            event["data"]["object"]["payment_intent"] = json!(format!("pi_bench_never_{i}"));
            event.to_string()
        });
        let ok = post_all(&client, &url, &secret, refunds.collect(), concurrency).await;
        eprintln!("{ok} of {parked} refunds of unknown payments posted first (parked)");
    }
    let template: Value = serde_json::from_str(TEMPLATE).expect("template event");
    let bodies: Vec<String> = (0..events)
        .map(|i| {
            let mut event = template.clone();
            event["id"] = json!(format!("evt_bench_{i}"));
            event["data"]["object"]["id"] = json!(format!("cs_bench_{i}"));
            event["data"]["object"]["payment_intent"] = json!(format!("pi_bench_{i}"));
            event.to_string()
        })
        .collect();
    let started = Instant::now();
    let ok = post_all(&client, &url, &secret, bodies, concurrency).await;
    let seconds = started.elapsed().as_secs_f64();
    println!("{ok} of {events} events accepted in {seconds:.2} s: {:.1} events/s", ok as f64 / seconds);
}

/// Posts every body, signed, `concurrency` at once; how many were answered 200.
async fn post_all(client: &reqwest::Client, url: &str, secret: &str, bodies: Vec<String>, concurrency: usize) -> usize {
    let statuses: Vec<u16> = futures::stream::iter(bodies)
        .map(|body| {
            let signature = stripe_webhook::Webhook::generate_test_header(&body, secret, None);
            async move {
                match client.post(url).header("Stripe-Signature", signature).body(body).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    statuses.iter().filter(|s| **s == 200).count()
}
