#![no_main]
use feedback::followups::link::{LinkPurpose, LinkSigner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    let signer = LinkSigner::new(b"fuzz key fuzz key fuzz key fuzz key!").unwrap();
    let now: jiff::Timestamp = "2026-11-25T08:30:00Z".parse().unwrap();
    for purpose in [LinkPurpose::Rate, LinkPurpose::Unsubscribe] {
        // Without the key nothing verifies.
        assert!(signer.verify_for(purpose, token, now).is_err());
    }
});
