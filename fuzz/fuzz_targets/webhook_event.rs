//! Any verified body Stripe could send: read and interpreted without a panic.
//! (The signature is checked before this; a body that is not an event is kept for staff.)
#![no_main]

use coopfund::payments::events::{interpret, received};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &str| {
    let Ok(event) = serde_json::from_str::<stripe_webhook::Event>(payload) else { return };
    let _ = received(&event, payload);
    let _ = interpret(&event, chrono_tz::Europe::London);
});
