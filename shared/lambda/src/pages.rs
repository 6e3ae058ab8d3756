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

/// A panel survey's page: its questions (each may be left out), thanks, or why not.
pub fn render_survey(
    page: &feedback::followups::survey::SurveyPage,
    language: Language,
    action: &str,
) -> (u16, String) {
    use feedback::followups::survey::{QuestionKind, SurveyPage};
    let zh = language == Language::Zh;
    let t = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
    let (status, title, body) = match page {
        SurveyPage::Form { survey, problems } => {
            let form = html! {
                p { (survey.intro(language)) }
                @if !problems.is_empty() {
                    p.problem role="alert" { (t("请检查标出的问题。", "Please check the questions marked.")) @if problems.iter().any(String::is_empty) { " " (t("至少回答一个问题。", "Answer at least one question.")) } }
                }
                form method="post" action=(action) {
                    @for q in &survey.questions {
                        fieldset.q.bad[problems.contains(&q.id)] {
                            legend { (q.prompt(language)) }
                            @match q.kind {
                                QuestionKind::Stars => {
                                    @for n in (1..=5).rev() {
                                        label.s { input type="radio" name=(q.id) value=(n); " " ("★".repeat(n)) " " (n) }
                                    }
                                }
                                QuestionKind::Choice => {
                                    @for o in &q.options {
                                        label.s { input type="radio" name=(q.id) value=(o.id); " " (o.label(language)) }
                                    }
                                }
                                QuestionKind::Text => {
                                    textarea name=(q.id) maxlength="2000" aria-label=(q.prompt(language)) {}
                                }
                            }
                        }
                    }
                    button { (t("提交", "Send")) }
                }
            };
            (if problems.is_empty() { 200 } else { 422 }, survey.title(language).to_owned(), form)
        }
        SurveyPage::Thanks => (200, t("谢谢您的回答！", "Thank you for your answers!").to_owned(), html! {}),
        SurveyPage::AlreadyAnswered => {
            (200, t("您已经回答过了，谢谢！", "You already answered this survey. Thank you!").to_owned(), html! {})
        }
        SurveyPage::Expired => (410, t("链接已过期", "This link has expired").to_owned(), html! {}),
        SurveyPage::Invalid => (404, t("链接无效", "This link is not valid").to_owned(), html! {}),
    };
    let lang = if zh { "zh-CN" } else { "en" };
    (status, shell(lang, &title, body))
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
         button{font-size:1.1rem;padding:.5rem 1.5rem}fieldset.q{border:0;padding:0;margin:1rem 0}\
         fieldset.q legend{font-weight:bold}fieldset.bad legend,.problem{color:#b91c1c}";
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

    #[test]
    fn a_survey_page_asks_each_question_in_the_links_language_and_marks_what_was_wrong() {
        use feedback::followups::survey::{SurveyPage, Surveys};
        let survey = Surveys::builtin().get("delivery-2026-12").unwrap().clone();
        let (status, page) =
            render_survey(&SurveyPage::Form { survey: survey.clone(), problems: Vec::new() }, Language::En, "../s/t");
        assert_eq!(status, 200);
        assert!(page.contains("How was your delivery?") && page.contains("Timely tracking updates"), "{page}");
        assert!(page.contains("name=\"overall\"") && page.contains("<textarea name=\"improve\""), "{page}");
        let (status, page) =
            render_survey(&SurveyPage::Form { survey, problems: vec!["overall".into()] }, Language::Zh, "../s/t");
        assert_eq!(status, 422);
        assert!(page.contains("配送体验调研") && page.contains("class=\"q bad\""), "{page}");
        assert_eq!(render_survey(&SurveyPage::Invalid, Language::Zh, "").0, 404);
    }
}
