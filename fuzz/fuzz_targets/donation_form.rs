//! Any bytes posted to /donate, decoded as the handler decodes them: never a panic, and an
//! accepted gift is always within the limits with an address.
#![no_main]

use coopfund::domain::{DonationForm, EmailAddress, Pence};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(form) = serde_urlencoded::from_bytes::<DonationForm>(body) else { return };
    if let Ok(gift) = form.parse(Pence(100), Pence(1_000_000)) {
        assert!((100..=1_000_000).contains(&gift.amount.0), "{gift:?}");
        assert!(EmailAddress::parse(gift.email.as_str()).is_ok(), "{gift:?}");
    }
});
