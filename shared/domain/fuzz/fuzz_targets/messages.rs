#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let now: jiff::Timestamp = "2026-11-25T08:30:00Z".parse().unwrap();
    if let Ok(b) = feedback::conversations::MessageBatch::from_json("c-1".into(), body, now) {
        assert!(!b.messages.is_empty());
    }
});
