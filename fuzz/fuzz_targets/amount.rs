//! Whatever a reader types as an amount: never a panic, and what is accepted reads back the same.
#![no_main]

use coopfund::domain::parse_amount;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(pence) = parse_amount(input) {
        assert!(pence.0 > 0, "{input:?} accepted as {pence:?}");
        assert_eq!(parse_amount(&pence.display_exact()), Ok(pence), "{input:?}");
    }
});
