//! The pages a customer sees behind a follow-up link.

use feedback::followups::link::LinkPage;
use feedback::language::Language;
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// A small, mobile-friendly page (no scripts, no external resources).
pub fn render(page: &LinkPage, language: Language, action: &str) -> (u16, String) {
    let zh = language == Language::Zh;
    let t = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
    let (status, title, body) = match page {
        LinkPage::RatingForm => {
            let form = html! {
                form method="post" action=(action) {
                    @for n in (1..=5).rev() {
                        label.s { input type="radio" name="stars" value=(n) required; " " ("★".repeat(n)) " " (n) }
                    }
                    textarea name="comment" maxlength="2000" placeholder=(t("还有什么想告诉我们的？（可选）", "Anything else to tell us? (optional)")) {}
                    button { (t("提交", "Send")) }
                }
            };
            (200, t("为这次服务打分", "Rate this conversation"), form)
        }
        LinkPage::Thanks => (200, t("谢谢您的反馈！", "Thank you for your feedback!"), html! {}),
        LinkPage::AlreadyRated => {
            (200, t("您已经评价过了，谢谢！", "You already rated this conversation. Thank you!"), html! {})
        }
        LinkPage::UnsubscribeForm => (
            200,
            t("不再接收回访？", "Stop follow-up messages?"),
            html! {
                form method="post" action=(action) {
                    input type="hidden" name="List-Unsubscribe" value="One-Click";
                    button { (t("退订", "Unsubscribe")) }
                }
            },
        ),
        LinkPage::Unsubscribed => {
            (200, t("已退订，我们不会再联系您。", "Unsubscribed. We will not contact you again."), html! {})
        }
        LinkPage::Expired => (410, t("链接已过期", "This link has expired"), html! {}),
        LinkPage::Invalid => (404, t("链接无效", "This link is not valid"), html! {}),
        LinkPage::BadForm => (422, t("请选择 1 到 5 颗星", "Please choose 1 to 5 stars"), html! {}),
    };
    let lang = if zh { "zh-CN" } else { "en" };
    (status, shell(lang, title, body))
}

/// The page when storage fails: in both languages (the link's language is not known then), and
/// saying what to do.
pub fn trouble() -> String {
    shell(
        "zh-CN",
        "暂时无法处理，请稍后再试",
        html! {
            p { "暂时无法处理，请一分钟后刷新页面再试。" }
            p lang="en" { "We could not do that just now. Please reload this page in a minute." }
        },
    )
}

fn shell(lang: &str, title: &str, body: Markup) -> String {
    const STYLE: &str = "body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}\
         .s{display:block;font-size:1.4rem;margin:.4rem 0}textarea{width:100%;height:6rem;margin:.8rem 0}\
         button{font-size:1.1rem;padding:.5rem 1.5rem}";
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { h1 { (title) } (body) }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form's action carries the token from the address: whatever it holds stays text.
    #[test]
    fn pages_escape_what_comes_from_the_address_and_speak_the_link_language() {
        let (status, page) = render(&LinkPage::RatingForm, Language::Zh, "../r/x\"><script>alert(1)</script>");
        assert_eq!(status, 200);
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"), "{page}");
        assert!(page.contains("<html lang=\"zh-CN\">") && page.contains("name=\"stars\"") && page.contains("★★★★★"));
        let (status, page) = render(&LinkPage::Expired, Language::En, "");
        assert_eq!(status, 410);
        assert!(page.contains("This link has expired"));
        assert!(trouble().contains("请一分钟后") && trouble().contains("in a minute"));
    }
}
