//! Values in chat text: the labelled shop chat (the JDDC sessions, and the sessions written like
//! them) masks every order number, amount, date, time and link (`[订单x]`, `[金额x]`); a shop's live
//! chat has the values themselves. The issue classifier reads a chat turn with its values masked
//! alike in training (`feedback train-issues`) and in production (`Analyzer::analyze_turn`), so an
//! order number or a price is not a word it never saw. The chat model reads a live turn and its
//! context with the values as JDDC's placeholders (`as_labelled_chat`), as it was trained.
//! See `models/CHAT.md` ("Values").

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::analysis::triggers::normalize_into;
use crate::language::Language;

/// The placeholders of the JDDC sessions (and of the sessions written like them), normalised
/// (`[订单x]` reads `订单x`), and the mark each is masked to. Names, addresses and the like are
/// words in live chat: their placeholders share one mark of their own.
const PLACEHOLDERS: [(&str, char); 13] = [
    ("数字x", '0'),
    ("订单x", '1'),
    ("金额x", '2'),
    ("日期x", '3'),
    ("时间x", '4'),
    ("链接x", '5'),
    ("电话x", '6'),
    ("身份证号x", '1'),
    ("姓名x", '7'),
    ("地址x", '7'),
    ("站点x", '7'),
    ("组织机构x", '7'),
    ("邮箱x", '7'),
];

/// The values of live chat, as the JDDC masker found them: a link, a date written with its year
/// (2018-12-26), a time (04:19:06), a number with a decimal part (151.36, and 1.5米 too), and
/// whole numbers (an order number, a phone number, any other: 3天, 30元, 12月26日 is
/// `[数字x]月[数字x]日` there).
fn values() -> &'static regex_lite::Regex {
    static RE: OnceLock<regex_lite::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex_lite::Regex::new(
            r"(?i)(?:https?://|www\.)[!-~]+|[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?|[0-9]+\.[0-9]+|[0-9]+",
        )
        .expect("a valid pattern")
    })
}

/// The JDDC placeholder for a value `values` found.
fn placeholder_of(value: &str) -> &'static str {
    let digits = value.bytes().all(|b| b.is_ascii_digit());
    match value.as_bytes() {
        [b, ..] if b.is_ascii_alphabetic() => "[链接x]",
        _ if digits && value.len() == 11 && value.starts_with('1') => "[电话x]",
        _ if digits && value.len() >= 9 => "[订单x]",
        _ if digits => "[数字x]",
        _ if value.contains(':') => "[时间x]",
        _ if value.len() >= 8 && value.as_bytes()[4].is_ascii_punctuation() => "[日期x]",
        _ => "[金额x]",
    }
}

/// Raw `text` with each value replaced by the placeholder the labelled sessions have for it
/// (704876475938 → `[订单x]`, 151.36 → `[金额x]`, a link → `[链接x]`); a text without a digit or a
/// link is returned as it is. Done on the raw text, where a link ends at a space and a decimal
/// point is still a point. Full-width digits (７０４８…, as a Chinese keyboard may type them) are
/// digits too.
fn values_to_placeholders(text: &str) -> Cow<'_, str> {
    let link =
        || text.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"http") || w.eq_ignore_ascii_case(b"www."));
    let full_width = |c: char| ('０'..='９').contains(&c);
    if text.chars().any(full_width) {
        let folded: String = text
            .chars()
            .map(|c| if full_width(c) { char::from(b'0' + (c as u32 - '０' as u32) as u8) } else { c })
            .collect();
        return Cow::Owned(values_to_placeholders(&folded).into_owned());
    }
    if !text.bytes().any(|b| b.is_ascii_digit()) && !link() {
        return Cow::Borrowed(text);
    }
    values().replace_all(text, |c: &regex_lite::Captures<'_>| placeholder_of(&c[0]))
}

/// A live chat text as the chat model reads it: a Chinese text with its values as the labelled
/// chat's placeholders ([`values_to_placeholders`]), so an order number or a price is not a word
/// the model never saw. An English text stays as it is: the labelled chat is Chinese, and a
/// Chinese placeholder would make it read as Chinese (the English rules and sentiment read it).
/// The language is the text's without its values (a bare link is no English). Borrowed when
/// nothing changes.
pub fn as_labelled_chat(text: &str) -> Cow<'_, str> {
    let labelled = values_to_placeholders(text);
    if matches!(labelled, Cow::Owned(_)) && Language::of_text(&values().replace_all(text, "")) == Language::En {
        return Cow::Borrowed(text);
    }
    labelled
}

/// Writes normalised `text` into `out` with every placeholder masked to its mark (an integer `0`,
/// an order or id number `1`, an amount `2`, a date `3`, a time `4`, a link `5`, a phone number `6`,
/// a name or place `7`; [`PLACEHOLDERS`]) and any digit left to `0`. Live chat goes through
/// [`values_to_placeholders`] first ([`mask_text`]), so `[订单x]` and 704876475938 read alike: the
/// labelled shop chat is masked and live chat is not, and unmasked the model would read an order
/// number or a price as words it never saw. Every digit is masked, so a digit in `out` is a mark.
/// The result is normalised text (normalising it again changes nothing).
fn mask_values(text: &str, out: &mut String) {
    out.clear();
    out.reserve(text.len());
    let ends_with_mark_then_space = |out: &str| {
        let mut tail = out.chars().rev();
        tail.next() == Some(' ') && tail.next().is_some_and(|c| c.is_ascii_digit())
    };
    // A value right after a mark, or a space apart (a date and then a time), is part of the same
    // value: the first mark stands. Normalising keeps a space between a value and a Chinese
    // character (等了3 天; 等了[数字x]天 reads 等了数字x 天) and drops it between two Chinese
    // characters: such a space goes.
    let push_mark = |out: &mut String, mark: char| {
        if ends_with_mark_then_space(out) {
            out.pop();
        } else if !out.ends_with(|c: char| c.is_ascii_digit()) {
            if out.ends_with(' ') && out[..out.len() - 1].chars().next_back().is_some_and(|c| !c.is_ascii()) {
                out.pop();
            }
            out.push(mark);
        }
    };
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            push_mark(out, '0');
            rest = &rest[1..];
        } else if let Some((p, mark)) = PLACEHOLDERS.iter().find(|(p, _)| rest.starts_with(*p)) {
            push_mark(out, *mark);
            rest = &rest[p.len()..];
        } else {
            if !c.is_ascii() && ends_with_mark_then_space(out) {
                out.pop();
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// `raw` (whose normalised form is `normalized`) as the models read a chat text: its values as
/// placeholders ([`values_to_placeholders`]), normalised, the placeholders masked
/// ([`mask_values`]), into `out`; `scratch` holds the normalised text when values were replaced.
pub fn mask_text(raw: &str, normalized: &str, scratch: &mut String, out: &mut String) {
    match values_to_placeholders(raw) {
        Cow::Borrowed(_) => mask_values(normalized, out),
        Cow::Owned(replaced) => {
            normalize_into(&replaced, scratch);
            mask_values(scratch, out);
        }
    }
}

/// `raw` as the issue types read a chat turn ([`mask_text`]), in a new string: for training, where
/// each text is read once.
pub fn masked_chat_text(raw: &str) -> String {
    let (mut out, mut scratch) = (String::new(), String::new());
    mask_text(raw, &crate::analysis::triggers::normalize(raw), &mut scratch, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::triggers::normalize;

    #[test]
    fn a_value_reads_the_same_masked_by_the_labelled_sessions_and_typed_in_live_chat() {
        let masked = masked_chat_text;
        assert_eq!(masked("订单号:[订单x] 等了[数字x]天"), masked("订单号:704876475938 等了3天"));
        assert_eq!(masked("订单号:[订单x] 等了[数字x]天"), "订单号1等了0天");
        assert_eq!(
            masked("[订单编号:[订单x]，订单金额:[金额x]，下单时间:[日期x] [时间x]]"),
            "订单编号1|订单金额2|下单时间3"
        );
        assert_eq!(
            masked("[订单编号:[订单x]，订单金额:[金额x]，下单时间:[日期x] [时间x]]"),
            masked("[订单编号:704876475938，订单金额:151.36，下单时间:2018-12-26 04:19:06]")
        );
        assert_eq!(masked("看这个[链接x] 怎么回事"), masked("看这个 https://item.jd.com/100012.html 怎么回事"));
        assert_eq!(masked("联系电话13800138000"), "联系电话6");
        assert_eq!(masked("[时间x]到的"), masked("10:21到的"));
        assert_eq!(masked("[金额x]米的床"), masked("1.5米的床"));
        assert_eq!(masked("[姓名x]签收的"), "7签收的");
        // A link ends where it ends in the raw text; words that only contain www are words.
        assert_eq!(
            masked("https://shop.com/p/123 arrived broken, I want a refund"),
            "5 arrived broken|i want a refund"
        );
        assert_eq!(masked("awww thanks 哈哈哈www"), normalize("awww thanks 哈哈哈www"));
        // Two values a clause apart stay two; a range or a day of a month is numbers, as JDDC
        // masked them.
        assert_eq!(masked("[订单x]，[数字x]天"), "1|0天");
        assert_eq!(masked("3-5天"), masked("[数字x]-[数字x]天"));
        assert_eq!(masked("12月26日"), masked("[数字x]月[数字x]日"));
        // Words stay words, and a mark between two values that are not one stays.
        assert_eq!(masked("我要投诉 太差了"), normalize("我要投诉 太差了"));
        assert_eq!(masked("3件，2件到了"), "0件|0件到了");
        // Masked text is normalised text: training may normalise it again (`train-issues`).
        for text in ["订单号:[订单x] 等了[数字x]天", "等了3 天 看 https://jd.com/1.html 呢", "10:21:33 到了吗"]
        {
            assert_eq!(normalize(&masked(text)), masked(text), "{text}");
        }
        // Full-width digits, as a Chinese keyboard may type them, are values too.
        assert_eq!(masked("订单号:７０４８７６４７５９３８ 等了３天"), masked("订单号:[订单x] 等了[数字x]天"));
    }

    #[test]
    fn the_chat_model_reads_a_chinese_turns_values_as_placeholders_and_an_english_turn_as_written() {
        assert_eq!(as_labelled_chat("订单704876475938等了3天，付了199.00"), "订单[订单x]等了[数字x]天，付了[金额x]");
        assert_eq!(as_labelled_chat("订单７０４８７６４７５９３８还没到"), "订单[订单x]还没到");
        assert!(matches!(as_labelled_chat("还没到吗"), Cow::Borrowed(_)));
        // A Chinese placeholder would make an English turn read as Chinese.
        let english = "I waited 40 minutes, order 123456789";
        assert!(matches!(as_labelled_chat(english), Cow::Borrowed(_)));
        // A link alone is no English: the shop's card of a product.
        assert_eq!(as_labelled_chat("https://item.jd.com/100012.html"), "[链接x]");
    }
}
