#![no_main]
//! libFuzzer entry for `relec_fuzz_harness::csv_import`; `cargo test -p relec-fuzz-harness` replays its corpus.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relec_fuzz_harness::csv_import(data));
