//! Posts distinct, signed, paid `checkout.session.completed` events to a running coopfund as
//! fast as it accepts them, and prints the rate. Loopback only: `webhook_load URL SECRET EVENTS CONCURRENCY`.

use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value, json};

const TEMPLATE: &str = include_str!("../src/payments/demo_events/gift_paid.json");

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:18181/webhooks/stripe".to_owned());
    let secret = args.next().unwrap_or_else(|| "whsec_bench".to_owned());
    let events: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(32);
    let template: Value = serde_json::from_str(TEMPLATE).expect("template event");
    let client = reqwest::Client::new();
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
    let statuses: Vec<u16> = futures::stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            let url = url.clone();
            let signature = stripe_webhook::Webhook::generate_test_header(&body, &secret, None);
            async move {
                match client.post(&url).header("Stripe-Signature", signature).body(body).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    println!("{ok} of {events} events accepted in {seconds:.2} s: {:.1} events/s", ok as f64 / seconds);
}
