#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kron_fuzz::cron(data));
