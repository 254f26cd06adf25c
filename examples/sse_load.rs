//! Holds many live readers of `/api/campaigns/current/events` on a running coopfund, counts
//! gifts through its webhook, and reports the server's memory per reader and how long each
//! change took to reach every reader. Loopback only, bounded:
//! `sse_load ADDR SERVER_PID SECRET SUBSCRIBERS CHANGES`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const TEMPLATE: &str = include_str!("../src/payments/demo_events/gift_paid.json");
const KEY: &str = "\"raised_pence\":";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18184".to_owned());
    let pid = args.next().unwrap_or_default();
    let secret = args.next().unwrap_or_else(|| "whsec_bench".to_owned());
    let subscribers: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let changes: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);

    let before = rss_kib(&pid);
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, i64, Instant)>();
    let ready = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut readers = Vec::with_capacity(subscribers);
    for n in 0..subscribers {
        readers.push(tokio::spawn(read_events(addr.clone(), n, tx.clone(), ready.clone())));
        if n % 200 == 199 {
            // Connect in waves, as readers arrive, not all in one instant that overflows the backlog.
            while ready.load(Ordering::Relaxed) + 50 < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    while ready.load(Ordering::Relaxed) < subscribers {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} readers connected",
            ready.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{subscribers} readers connected and given the figures in {:.1} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with = rss_kib(&pid);
    while rx.try_recv().is_ok() {}

    // Count gifts one by one, each after the last has reached everyone.
    let template: Value = serde_json::from_str(TEMPLATE).expect("template event");
    let amount = template["data"]["object"]["amount_total"].as_i64().expect("amount_total");
    let raised_now = current_raised(&addr).await;
    let client = reqwest::Client::new();
    let mut sent_at: HashMap<i64, Instant> = HashMap::new();
    let mut delays: Vec<Duration> = Vec::with_capacity(subscribers * changes);
    let mut slowest: Vec<Duration> = Vec::with_capacity(changes);
    for change in 0..changes {
        let mut event = template.clone();
        event["id"] = json!(format!("evt_sse_{change}_{}", std::process::id()));
        event["data"]["object"]["id"] = json!(format!("cs_sse_{change}_{}", std::process::id()));
        event["data"]["object"]["payment_intent"] = json!(format!("pi_sse_{change}_{}", std::process::id()));
        let body = event.to_string();
        let signature = stripe_webhook::Webhook::generate_test_header(&body, &secret, None);
        let expected = raised_now + amount * (change as i64 + 1);
        let at = Instant::now();
        sent_at.insert(expected, at);
        let status = client
            .post(format!("http://{addr}/webhooks/stripe"))
            .header("Stripe-Signature", signature)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        assert_eq!(status, 200, "the webhook was accepted");
        let mut reached = 0;
        let mut last = Duration::ZERO;
        while reached < subscribers {
            let received = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            let Ok(Some((_, raised, when))) = received else {
                panic!("change {change} reached only {reached} of {subscribers} readers in 10 s");
            };
            if raised == expected {
                let delay = when - at;
                delays.push(delay);
                last = last.max(delay);
                reached += 1;
            }
        }
        slowest.push(last);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    delays.sort();
    slowest.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "commit → reader over {changes} changes × {subscribers} readers: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         last reader per change: p50 {:.1} ms, p99 {:.1} ms",
        ms(pct(&delays, 0.5)),
        ms(pct(&delays, 0.99)),
        ms(pct(&delays, 1.0)),
        ms(pct(&slowest, 0.5)),
        ms(pct(&slowest, 0.99)),
    );

    for reader in &readers {
        reader.abort();
    }
    drop(readers);
    // A reader that leaves is noticed when writing to it fails: at the second keep-alive comment
    // after it left (the first only draws the peer's reset). Wait up to 45 s for the memory.
    let left = Instant::now();
    let mut after = rss_kib(&pid);
    while after > before + before / 4 && left.elapsed() < Duration::from_secs(45) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = rss_kib(&pid);
    }
    println!(
        "server memory: {:.1} MiB before, {:.1} MiB with {subscribers} readers ({:.1} KiB each), \
         {:.1} MiB {:.1} s after they left",
        before as f64 / 1024.0,
        with as f64 / 1024.0,
        (with - before) as f64 / subscribers as f64,
        after as f64 / 1024.0,
        left.elapsed().as_secs_f64(),
    );
}

/// One reader: reports every `raised_pence` it is sent, with when it arrived.
async fn read_events(
    addr: String,
    n: usize,
    tx: mpsc::UnboundedSender<(usize, i64, Instant)>,
    ready: Arc<AtomicUsize>,
) {
    let Ok(mut stream) = TcpStream::connect(&addr).await else {
        eprintln!("reader {n} could not connect");
        return;
    };
    let request = "GET /api/campaigns/current/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let mut buffer = [0u8; 8192];
    let mut text = String::new();
    let mut first = true;
    loop {
        let Ok(read) = stream.read(&mut buffer).await else { return };
        if read == 0 {
            return;
        }
        let now = Instant::now();
        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
        while let Some(at) = text.find(KEY) {
            let digits: String = text[at + KEY.len()..].chars().take_while(char::is_ascii_digit).collect();
            if at + KEY.len() + digits.len() >= text.len() {
                break; // the number may go on in the next read
            }
            if let Ok(raised) = digits.parse() {
                let _ = tx.send((n, raised, now));
                if first {
                    first = false;
                    ready.fetch_add(1, Ordering::Relaxed);
                }
            }
            text.drain(..at + KEY.len());
        }
        if !text.contains(KEY) && text.len() > KEY.len() {
            // Keep only a tail that may hold the start of the next key ("£" is two bytes).
            let cut = (0..=text.len() - KEY.len()).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.drain(..cut);
        }
    }
}

async fn current_raised(addr: &str) -> i64 {
    let body: Value = reqwest::get(format!("http://{addr}/api/campaigns/current"))
        .await
        .and_then(|r| r.error_for_status())
        .expect("the figures")
        .json()
        .await
        .expect("JSON");
    body["raised_pence"].as_i64().expect("raised_pence")
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: &str) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse().ok()))
        })
        .unwrap_or(0)
}
