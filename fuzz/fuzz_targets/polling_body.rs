#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_fuzz::polling_body(data));
