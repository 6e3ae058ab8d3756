#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(s) = feedback::ratings::RatingSubmission::from_json(body) {
        assert!((1..=5).contains(&s.stars));
    }
});
