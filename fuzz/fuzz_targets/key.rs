//! Key building (`Key::for_args`, `Key::new`, one-placeholder templates) on arbitrary
//! paths and arguments of any serde shape: keys within `MAX_KEY_LEN` and without control
//! characters, serde_json's text kept for ordinary arguments, distinct arguments never
//! sharing a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use querycache::__fuzz::Arg;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    path: String,
    batch: Vec<Arg>,
    template: (String, String),
}

fuzz_target!(|input: Input| {
    querycache::__fuzz::key(
        &input.path,
        &input.batch,
        (&input.template.0, &input.template.1),
    )
});
