#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let now: jiff::Timestamp = "2026-11-25T08:30:00Z".parse().unwrap();
    if let Ok(c) = feedback::followups::contacts::ContactDetails::from_json("u-1".into(), body, now) {
        assert!(c.email.as_deref().is_none_or(str::is_ascii));
    }
});
