#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let once = feedback::pii::mask_contacts(text).into_owned();
    assert_eq!(feedback::pii::mask_contacts(&once), once, "masking is idempotent");
});
