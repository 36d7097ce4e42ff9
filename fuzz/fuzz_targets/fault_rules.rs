//! The fault-rule parser (`AIO_FAULT`, `aio mount --fault`, `aio run --fault`): any text either
//! fails with a message naming what is wrong, or parses to a rule whose SPEC (its `Display`)
//! parses back to the same rule, and prints the same again.

#![no_main]

use aio::faults::Rule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match text.parse::<Rule>() {
        Err(msg) => assert!(!msg.is_empty(), "{text:?} was refused without a message"),
        Ok(rule) => {
            let spec = rule.to_string();
            let again: Rule = match spec.parse() {
                Ok(r) => r,
                Err(e) => panic!("{text:?} parsed, but its SPEC {spec:?} does not: {e}"),
            };
            assert_eq!(again, rule, "{text:?} → {spec:?} parses to another rule");
            assert_eq!(again.to_string(), spec, "{text:?}: the SPEC is not stable");
        }
    }
});
