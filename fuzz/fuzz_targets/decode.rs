//! The Redis payload decoder (`store::codec::unframe` / `store::codec::header`) on
//! arbitrary bytes: never a panic, no allocation beyond what the bytes can hold (version
//! counts, lz4 size claims), and whatever decodes re-frames (plain and compressed) to the
//! same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| querycache::__fuzz::decode(bytes));
