//! Personal data in free text: customers paste their phone number or e-mail address into chat
//! ("加我微信 138 1234 5678"). Anything that leaves the conversation for staff (alerts, digests,
//! example comments) goes through [`mask_contacts`] first.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex_lite::Regex;

pub const EMAIL_MASK: &str = "[email]";
pub const PHONE_MASK: &str = "[phone]";
pub const ID_NUMBER_MASK: &str = "[id-number]";

fn email() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"[A-Za-z0-9._%+\-]+(?:@|＠)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").expect("email regex")
    })
}

/// Runs of digits (ASCII or full-width) with at most one space, dash or dot between digits, and an
/// optional leading `+`. Whether a run is a phone number is decided by [`classify`].
fn digit_run() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"[+＋]?[0-9０-９](?:[ \-.]?[0-9０-９]){6,19}[Xx]?").expect("digit regex"))
}

/// Replaces e-mail addresses, phone numbers (Chinese mobile and landline, and anything written in
/// international `+` form) and Chinese resident ID numbers with placeholders. Order numbers,
/// amounts and tracking numbers are left alone: a run glued to letters (`SF1234567890`) or with a
/// length no phone has is not a phone.
pub fn mask_contacts(text: &str) -> Cow<'_, str> {
    let emails = email().replace_all(text, EMAIL_MASK);
    let mut out = String::new();
    let mut last = 0;
    let source: &str = &emails;
    for m in digit_run().find_iter(source) {
        let glued_before = source[..m.start()].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric());
        let glued_after = source[m.end()..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if glued_before || glued_after {
            continue;
        }
        if let Some(mask) = classify(m.as_str()) {
            out.push_str(&source[last..m.start()]);
            out.push_str(mask);
            last = m.end();
        }
    }
    if last == 0 {
        return emails;
    }
    out.push_str(&source[last..]);
    Cow::Owned(out)
}

fn classify(run: &str) -> Option<&'static str> {
    let plus = run.starts_with(['+', '＋']);
    let check_x = run.ends_with(['X', 'x']);
    let digits: Vec<u8> = run
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c as u8 - b'0'),
            '０'..='９' => Some((c as u32 - '０' as u32) as u8),
            _ => None,
        })
        .collect();
    let n = digits.len();
    let mobile = |d: &[u8]| d.len() == 11 && d[0] == 1 && (3..=9).contains(&d[1]);
    if (n == 18 || (n == 17 && check_x)) && looks_like_birth_date(&digits[6..14]) {
        return Some(ID_NUMBER_MASK);
    }
    if check_x {
        return None;
    }
    let phone = (plus && (8..=15).contains(&n))
        || mobile(&digits)
        || (n == 13 && digits[..2] == [8, 6] && mobile(&digits[2..]))
        || (digits[0] == 0 && (10..=12).contains(&n) && digits[1] != 0);
    phone.then_some(PHONE_MASK)
}

fn looks_like_birth_date(d: &[u8]) -> bool {
    let year = d[..4].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let month = u32::from(d[4]) * 10 + u32::from(d[5]);
    let day = u32::from(d[6]) * 10 + u32::from(d[7]);
    (1900..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phone_numbers_and_emails_are_masked() {
        let cases = [
            ("我的电话13812345678，快联系我", "我的电话[phone]，快联系我"),
            ("加我 138 1234 5678 谢谢", "加我 [phone] 谢谢"),
            ("call me on +44 20 7946 0958 please", "call me on [phone] please"),
            ("手机：+86 139-1234-5678", "手机：[phone]"),
            ("座机 021-62345678", "座机 [phone]"),
            ("邮箱 zhang.san+shop@example.com.cn 回复我", "邮箱 [email] 回复我"),
            ("mail ME@Example.ORG.", "mail [email]."),
            ("身份证 110101199003071234", "身份证 [id-number]"),
            ("１３８１２３４５６７８", "[phone]"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_contacts(input), expected, "{input}");
        }
    }

    #[test]
    fn order_numbers_amounts_and_dates_are_left_alone() {
        for text in [
            "订单号 20261125123456789 还没发货",
            "快递单号SF1234567890查不到",
            "花了 1299.00 元",
            "2026-11-25 下的单",
            "order #4412 is late",
            "tracking 773100981234567",
        ] {
            assert_eq!(mask_contacts(text), text);
        }
    }

    #[test]
    fn text_without_contacts_is_not_copied() {
        assert!(matches!(mask_contacts("物流太慢了"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn masking_never_panics_and_is_idempotent(s in any::<String>()) {
            let once = mask_contacts(&s).into_owned();
            prop_assert_eq!(mask_contacts(&once).into_owned(), once);
        }

        #[test]
        fn any_chinese_mobile_number_is_masked(n in "1[3-9][0-9]{9}", before in "[^0-9A-Za-z]{0,3}") {
            let text = format!("{before}{n} 联系我");
            let masked = mask_contacts(&text);
            prop_assert!(!masked.contains(n.as_str()));
        }
    }
}
