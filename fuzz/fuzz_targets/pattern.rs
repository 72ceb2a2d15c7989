//! Pattern invalidation on an arbitrary store prefix, glob and keys: never a panic, and the
//! Redis store's SCAN `MATCH` translation plus glob filter removes exactly the keys the
//! memory store's glob match removes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    prefix: &'a str,
    pattern: &'a str,
    keys: Vec<&'a str>,
}

fuzz_target!(|input: Input<'_>| {
    querycache::__fuzz::pattern(input.prefix, input.pattern, &input.keys)
});
