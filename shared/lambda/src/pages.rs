//! The pages a customer sees behind a follow-up link.

use feedback::followups::link::LinkPage;
use feedback::language::Language;

/// A small, mobile-friendly page (no scripts, no external resources).
pub fn render(page: &LinkPage, language: Language, action: &str) -> (u16, String) {
    let zh = language == Language::Zh;
    let t = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
    let (status, title, body) = match page {
        LinkPage::RatingForm => {
            let stars: String = (1..=5)
                .rev()
                .map(|n| {
                    format!(
                        "<label class=s><input type=radio name=stars value={n} required> {} {n}</label>",
                        "★".repeat(n)
                    )
                })
                .collect();
            (
                200,
                t("为这次服务打分", "Rate this conversation"),
                format!(
                    "<form method=post action=\"{action}\">{stars}<textarea name=comment maxlength=2000 placeholder=\"{}\"></textarea><button>{}</button></form>",
                    t("还有什么想告诉我们的？（可选）", "Anything else to tell us? (optional)"),
                    t("提交", "Send")
                ),
            )
        }
        LinkPage::Thanks => (200, t("谢谢您的反馈！", "Thank you for your feedback!"), String::new()),
        LinkPage::AlreadyRated => {
            (200, t("您已经评价过了，谢谢！", "You already rated this conversation. Thank you!"), String::new())
        }
        LinkPage::UnsubscribeForm => (
            200,
            t("不再接收回访？", "Stop follow-up messages?"),
            format!(
                "<form method=post action=\"{action}\"><input type=hidden name=List-Unsubscribe value=One-Click><button>{}</button></form>",
                t("退订", "Unsubscribe")
            ),
        ),
        LinkPage::Unsubscribed => {
            (200, t("已退订，我们不会再联系您。", "Unsubscribed. We will not contact you again."), String::new())
        }
        LinkPage::Expired => (410, t("链接已过期", "This link has expired"), String::new()),
        LinkPage::Invalid => (404, t("链接无效", "This link is not valid"), String::new()),
        LinkPage::BadForm => (422, t("请选择 1 到 5 颗星", "Please choose 1 to 5 stars"), String::new()),
    };
    let lang = if zh { "zh-CN" } else { "en" };
    (status, shell(lang, title, &body))
}

/// The page when storage fails: in both languages (the link's language is not known then), and
/// saying what to do.
pub fn trouble() -> String {
    shell(
        "zh-CN",
        "暂时无法处理，请稍后再试",
        "<p>暂时无法处理，请一分钟后刷新页面再试。</p><p lang=en>We could not do that just now. Please reload this page in a minute.</p>",
    )
}

fn shell(lang: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang={lang}><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
             <meta name=robots content=noindex><title>{title}</title><style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}\
             .s{{display:block;font-size:1.4rem;margin:.4rem 0}}textarea{{width:100%;height:6rem;margin:.8rem 0}}button{{font-size:1.1rem;padding:.5rem 1.5rem}}</style></head>\
             <body><h1>{title}</h1>{body}</body></html>"
    )
}
