//! Personal data in free text: customers paste their phone number or e-mail address into chat
//! ("加我微信 138 1234 5678"). Anything that leaves the conversation for staff (alerts, digests,
//! example comments) goes through [`mask_contacts`] first.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex_lite::Regex;

pub const EMAIL_MASK: &str = "[email]";
pub const PHONE_MASK: &str = "[phone]";
pub const ID_NUMBER_MASK: &str = "[id-number]";

/// E-mail addresses in the folded text (see [`Folded`]): the local part may be Latin or Chinese.
fn email() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"[A-Za-z0-9._%+\-À-ɏ一-龥]+ ?@ ?[A-Za-z0-9\-一-龥]+(?: ?\. ?[A-Za-z0-9\-]+)* ?\. ?[A-Za-z]{2,}")
            .expect("email regex")
    })
}

/// Runs of digits in the folded text with up to three separators (spaces, dashes, dots, slashes,
/// brackets) between digits, and an optional leading `+`. Whether a run is a phone number or an ID
/// number is decided by [`classify`].
fn digit_run() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"\+?[0-9](?:[ \-./()]{0,3}[0-9]){6,19}[Xx]?").expect("digit regex"))
}

/// The text as the matchers read it: full-width forms folded to ASCII (１３８, ＠, ．), the
/// ideographic space to a space, 。 to a dot, Chinese numerals to digits (一三八…), `(at)`/`[at]` and
/// `(dot)`/`[dot]` to `@` and `.`, and a `tel`/`phone`/`mobile` label before a number blanked so the
/// number stands on its own. `origin[i]` is the byte range in the original text that folded byte
/// `i` came from, so what matches here is masked there.
struct Folded {
    text: String,
    origin: Vec<(usize, usize)>,
}

impl Folded {
    fn new(original: &str) -> Folded {
        let chars: Vec<(usize, char)> = original.char_indices().collect();
        let end_of = |k: usize| chars.get(k).map_or(original.len(), |c| c.0);
        let mut folded = Folded { text: String::with_capacity(original.len()), origin: Vec::new() };
        let mut k = 0;
        while k < chars.len() {
            let (start, c) = chars[k];
            // Spelled-out @ and . in brackets: (at) [at] （at） (dot) [dot] （dot）.
            if matches!(c, '(' | '[' | '（' | '【') {
                let word: String = chars[k + 1..].iter().take(4).map(|c| c.1.to_ascii_lowercase()).collect();
                let spelled = [
                    ("at)", '@'),
                    ("at]", '@'),
                    ("at）", '@'),
                    ("at】", '@'),
                    ("dot)", '.'),
                    ("dot]", '.'),
                    ("dot）", '.'),
                    ("dot】", '.'),
                ]
                .into_iter()
                .find(|(w, _)| word.starts_with(w));
                if let Some((w, to)) = spelled {
                    let n = w.chars().count() + 1;
                    folded.push(to, start, end_of(k + n));
                    k += n;
                    continue;
                }
            }
            folded.push(fold_char(c), start, end_of(k + 1));
            k += 1;
        }
        folded.blank_phone_labels();
        folded
    }

    fn push(&mut self, c: char, start: usize, end: usize) {
        for _ in 0..c.len_utf8() {
            self.origin.push((start, end));
        }
        self.text.push(c);
    }

    /// `tel13812345678`, `Tel: 138…`, `phone 138…`: the label would glue the number to letters.
    fn blank_phone_labels(&mut self) {
        let lower = self.text.to_ascii_lowercase();
        let mut blanks = Vec::new();
        for label in ["tel", "phone", "mobile", "mob", "cell"] {
            for (at, _) in lower.match_indices(label) {
                let glued_before = lower[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphabetic());
                let rest = lower[at + label.len()..].trim_start_matches([':', '.', ' ', '#']);
                if !glued_before && rest.starts_with(|c: char| c.is_ascii_digit() || c == '+') {
                    blanks.push(at..at + label.len());
                }
            }
        }
        if blanks.is_empty() {
            return;
        }
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        for range in blanks {
            bytes[range].fill(b' ');
        }
        self.text = String::from_utf8(bytes).expect("ASCII letters replaced by ASCII spaces");
    }

    /// The original byte range of folded bytes `start..end`.
    fn original(&self, start: usize, end: usize) -> (usize, usize) {
        (self.origin[start].0, self.origin[end - 1].1)
    }
}

fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '。' => '.',
        '〇' | '零' => '0',
        '一' | '幺' => '1',
        '二' | '两' => '2',
        '三' => '3',
        '四' => '4',
        '五' => '5',
        '六' => '6',
        '七' => '7',
        '八' => '8',
        '九' => '9',
        _ => c,
    }
}

/// Replaces e-mail addresses, phone numbers (Chinese mobile and landline, international `+` and
/// `00` forms) and Chinese resident ID numbers (18 and old 15 digits) with placeholders, however
/// they are written: full-width, with Chinese numerals, spaced or slashed, labelled `tel`, or with
/// `(at)`/`(dot)` spelled out. Order numbers, amounts and tracking numbers are left alone: a run
/// glued to letters (`SF1234567890`) or with a length no phone has is not a phone.
pub fn mask_contacts(text: &str) -> Cow<'_, str> {
    let folded = Folded::new(text);
    let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
    // What is masked, in folded positions: a run next to a mask is not glued to it (the mask's
    // brackets would unglue it on a second pass, so masking twice would mask more).
    let mut masked: Vec<(usize, usize)> = Vec::new();
    for m in email().find_iter(&folded.text) {
        let (start, end) = folded.original(m.start(), m.end());
        spans.push((start, end, EMAIL_MASK));
        masked.push((m.start(), m.end()));
    }
    let source = folded.text.as_str();
    let in_mask = |masked: &[(usize, usize)], at: usize| masked.iter().any(|&(s, e)| s <= at && at < e);
    for m in digit_run().find_iter(source) {
        let before = source[..m.start()].char_indices().next_back();
        let after = source[m.end()..].chars().next();
        let glued_before = before.is_some_and(|(at, c)| c.is_ascii_alphanumeric() && !in_mask(&masked, at));
        let glued_after = after.is_some_and(|c| c.is_ascii_alphanumeric() && !in_mask(&masked, m.end()));
        if glued_before || glued_after {
            continue;
        }
        let (start, end) = folded.original(m.start(), m.end());
        if spans.iter().any(|(s, e, _)| start < *e && *s < end) {
            continue;
        }
        if let Some(mask) = classify(m.as_str()) {
            spans.push((start, end, mask));
            masked.push((m.start(), m.end()));
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, mask) in spans {
        if start < last {
            continue;
        }
        out.push_str(&text[last..start]);
        out.push_str(mask);
        last = end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

fn classify(run: &str) -> Option<&'static str> {
    let plus = run.starts_with('+');
    let check_x = run.ends_with(['X', 'x']);
    let digits: Vec<u8> = run.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    let n = digits.len();
    let mobile = |d: &[u8]| d.len() == 11 && d[0] == 1 && (3..=9).contains(&d[1]);
    if (n == 18 || (n == 17 && check_x)) && looks_like_birth_date(&digits[6..14]) {
        return Some(ID_NUMBER_MASK);
    }
    // The first-generation ID number: 15 digits, born 19YYMMDD.
    if n == 15 && !plus && !check_x && looks_like_birth_date(&[&[1, 9], &digits[6..12]].concat()) {
        return Some(ID_NUMBER_MASK);
    }
    if check_x {
        return None;
    }
    let international = digits.starts_with(&[0, 0]) && (10..=17).contains(&n) && digits[2] != 0;
    let phone = (plus && (8..=15).contains(&n))
        || international
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
    fn contacts_written_in_the_ways_customers_write_them_are_masked() {
        let cases = [
            ("打 0086 138 1234 5678", "打 [phone]"),
            ("call 0044 20 7946 0958", "call [phone]"),
            ("tel13812345678", "tel[phone]"),
            ("Tel: 13812345678 thanks", "Tel: [phone] thanks"),
            ("138　1234　5678", "[phone]"),
            ("138  1234  5678", "[phone]"),
            ("138/1234/5678", "[phone]"),
            ("１３８－１２３４－５６７８", "[phone]"),
            ("电话一三八一二三四五六七八", "电话[phone]"),
            ("发到 张三@example.com", "发到 [email]"),
            ("zhangsan＠example．com", "[email]"),
            ("zhangsan(at)example(dot)com", "[email]"),
            ("zhangsan [at] example [dot] com", "[email]"),
            ("mail zhangsan@qq。com", "mail [email]"),
            ("老身份证 110101900307123", "老身份证 [id-number]"),
            ("身份证 11010119900307123X", "身份证 [id-number]"),
            ("手机：+86 139-1234-5678", "手机：[phone]"),
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
            "一二三四五",
            "2026/11/25 下的单",
            "看了 three at the shop",
            "退款 129.5 元，单号 4412",
        ] {
            assert_eq!(mask_contacts(text), text);
        }
    }

    #[test]
    fn masking_twice_masks_nothing_more() {
        // Found by the coverage-guided fuzzer: a run glued to a run that was masked.
        for text in ["+15000100(1+15000100(155+", "a@b.com13812345678", "13812345678a@b.com"] {
            let once = mask_contacts(text).into_owned();
            assert_eq!(mask_contacts(&once), once, "{text}");
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

        /// A mobile number however it is written: any prefix, grouping, separator and digit style.
        #[test]
        fn a_mobile_number_in_any_format_is_masked(
            n in "1[3-9][0-9]{9}",
            prefix in prop::sample::select(vec!["", "+86", "+86 ", "0086", "0086 ", "86", "tel", "Tel:", "tel ", "电话", "手机：", "(+86) "]),
            separator in prop::sample::select(vec!["", " ", "  ", "-", "/", "\u{3000}", ".", " - "]),
            style in 0..3u8,
            before in "[这是我的联系方式 ]{0,4}",
            after in "[，谢谢 。]{0,3}",
        ) {
            let digits: String = n.chars().map(|c| match style {
                0 => c,
                1 => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
                _ => "零一二三四五六七八九".chars().nth(c as usize - '0' as usize).unwrap(),
            }).collect();
            let d: Vec<char> = digits.chars().collect();
            let grouped = [d[..3].iter().collect::<String>(), d[3..7].iter().collect(), d[7..].iter().collect()].join(separator);
            let text = format!("{before}{prefix}{grouped}{after}");
            let masked = mask_contacts(&text);
            let back: String = Folded::new(&masked).text.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!back.contains(&n[3..]), "{text:?} -> {masked:?}");
        }

        #[test]
        fn an_email_address_in_any_format_is_masked(
            local in "[a-z][a-z0-9._]{1,8}|[张李王][三四五]{1,2}",
            domain in "[a-z]{2,8}",
            at in prop::sample::select(vec!["@", "＠", "(at)", "[at]", " [at] ", "（at）"]),
            dot in prop::sample::select(vec![".", "．", "(dot)", "[dot]", " [dot] ", "。"]),
            tld in prop::sample::select(vec!["com", "cn", "net"]),
            before in "[邮箱发到 ]{0,4}",
        ) {
            let text = format!("{before}{local}{at}{domain}{dot}{tld} 谢谢");
            let masked = mask_contacts(&text);
            prop_assert!(!masked.replace(EMAIL_MASK, "").contains(&domain), "{text:?} -> {masked:?}");
            prop_assert!(masked.contains(EMAIL_MASK), "{text:?} -> {masked:?}");
        }

        #[test]
        fn any_chinese_mobile_number_is_masked(n in "1[3-9][0-9]{9}", before in "[^0-9A-Za-z]{0,3}") {
            let text = format!("{before}{n} 联系我");
            let masked = mask_contacts(&text);
            prop_assert!(!masked.contains(n.as_str()));
        }
    }
}
