//! The Monday digest's messages: subject, text, HTML with inline charts, the raw MIME for SES and
//! the short message for the staff topic, in the shop's language (`DigestSettings::locale`, the
//! template's `StaffLocale`; strings from `feedback::i18n`'s catalogues).

use feedback::i18n::Catalogue;
use feedback::insights::weekly::{RankedIssue, WeeklyReport, opt_pct};
use feedback::reporting::{DigestComposer, DigestSettings, InlineImage};

/// The digest as the weekly run sends it: charts (drawn by `charts`, none for an empty week) inline
/// in the HTML part of the e-mail; the staff topic gets the short text.
pub struct Composer<F>(pub F);

impl<F: Fn(&WeeklyReport, &Catalogue) -> Result<Vec<InlineImage>, String>> DigestComposer for Composer<F> {
    fn email(&self, settings: &DigestSettings, report: &WeeklyReport) -> Result<Vec<u8>, String> {
        let cat = settings.locale.catalogue();
        let images = if report.empty { Vec::new() } else { (self.0)(report, cat)? };
        Ok(digest_mime(settings, report, &images, &format!("fl-{}", ulid::Ulid::new())))
    }

    fn staff_message(&self, settings: &DigestSettings, report: &WeeklyReport) -> (String, String) {
        // SNS subjects are ASCII whatever the language (the shop's name may not be).
        let subject = format!("[Feedback Loop] Weekly feedback {}", report.week);
        (subject, sns_message(report, settings.dashboard_url.as_deref(), settings.locale.catalogue()))
    }
}

pub fn subject(settings: &DigestSettings, r: &WeeklyReport) -> String {
    let cat = settings.locale.catalogue();
    let shop = settings.shop_name.replace(['\r', '\n'], " ");
    if r.empty {
        return cat.f("digest.subject_empty", &[("shop", &shop), ("week", &r.week)]);
    }
    let csat = r.headline.csat_pct.map_or(cat.t("digest.no_ratings"), |c| format!("CSAT {c:.1}%"));
    match r.issues.first() {
        Some(top) => cat.f(
            "digest.subject_top",
            &[("shop", &shop), ("week", &r.week), ("csat", &csat), ("issue", &top.label(cat.locale.language()))],
        ),
        None => cat.f("digest.subject", &[("shop", &shop), ("week", &r.week), ("csat", &csat)]),
    }
}

fn stars(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |s| format!("{s:.2}"))
}

fn issue_line(i: &RankedIssue, cat: &Catalogue) -> String {
    cat.f(
        "digest.issue",
        &[
            ("rank", &i.rank),
            ("issue", &i.label(cat.locale.language())),
            ("priority", &format!("{:.0}", i.priority)),
            ("items", &i.items),
            ("customers", &i.customers),
            ("trend", &i.trend.arrow(cat)),
        ],
    )
}

fn period(r: &WeeklyReport, cat: &Catalogue) -> String {
    cat.f("digest.period", &[("from", &r.from), ("to", &r.to)])
}

/// The plain-text part.
pub fn digest_text(r: &WeeklyReport, dashboard_url: Option<&str>, cat: &Catalogue) -> String {
    let mut out = format!("{} ({})\n\n", cat.f("digest.title", &[("week", &r.week)]), period(r, cat));
    let dashboard = |out: &mut String| {
        if let Some(url) = dashboard_url {
            out.push_str(&format!("\n{}{} {url}\n", cat.t("digest.dashboard"), cat.t("list.colon")));
        }
    };
    if r.empty {
        out.push_str(&format!("{}\n", cat.t("digest.empty")));
        dashboard(&mut out);
        return out;
    }
    let h = &r.headline;
    let (csat, average, rate) = (opt_pct(h.csat_pct), stars(h.average_stars), opt_pct(h.response_rate_pct));
    let mut line =
        |key: &str, args: &[(&str, &dyn std::fmt::Display)]| out.push_str(&format!("{}\n", cat.f(key, args)));
    line(
        "digest.headline",
        &[
            ("csat", &csat),
            ("stars", &average),
            ("ratings", &h.ratings),
            ("items", &h.feedback),
            ("customers", &h.customers),
        ],
    );
    line(
        "digest.sentiment",
        &[
            ("positive", &h.positive),
            ("neutral", &h.neutral),
            ("negative", &h.negative),
            ("severe", &h.severe),
            ("triggers", &h.triggers),
        ],
    );
    line(
        "digest.follow_ups",
        &[
            ("sent", &h.follow_ups_sent),
            ("reminders", &h.reminders_sent),
            ("answered", &h.follow_up_answers),
            ("rate", &rate),
        ],
    );
    if let Some(estimated) = h.estimated.sentence(cat) {
        out.push_str(&format!("{estimated}\n"));
    }
    let mut list = |title: &str, lines: &[String]| {
        if !lines.is_empty() {
            out.push_str(&format!("\n{}{}\n", cat.t(title), cat.t("list.colon")));
            for line in lines {
                out.push_str(&format!("- {line}\n"));
            }
        }
    };
    list("digest.service", &r.service_lines(cat));
    list("digest.proactive", &r.proactive_lines(cat));
    list("digest.changes", &r.changes.iter().map(|c| c.render(cat)).collect::<Vec<_>>());
    out.push_str(&format!("\n{}{}\n", cat.t("digest.fix_first"), cat.t("list.colon")));
    if let Some(why) = &r.why_first {
        out.push_str(&format!("{}\n", why.render(cat)));
    }
    for i in r.issues.iter().take(5) {
        out.push_str(&format!("\n{}\n", issue_line(i, cat)));
        for reason in &i.reasons {
            out.push_str(&format!("   · {}\n", reason.render(cat)));
        }
        for e in &i.examples {
            out.push_str(&format!("   “{}”\n", e.text));
        }
    }
    if r.issues.is_empty() {
        out.push_str(&format!("{}\n", cat.t("digest.no_problems")));
    }
    dashboard(&mut out);
    out
}

/// The HTML part: tables and inline styles (what mail clients render), charts as `cid:` images.
pub fn digest_html(r: &WeeklyReport, dashboard_url: Option<&str>, images: &[InlineImage], cat: &Catalogue) -> String {
    use feedback::insights::weekly::Trend;
    use maud::{DOCTYPE, html};
    const H2: &str = "font-size:16px;margin:16px 0 4px";
    let h = &r.headline;
    let tiles = [
        (cat.t("tile.csat"), opt_pct(h.csat_pct)),
        (cat.t("tile.estimated"), opt_pct(h.estimated.csat_pct)),
        (cat.t("tile.average_stars"), stars(h.average_stars)),
        (cat.t("tile.ratings"), h.ratings.to_string()),
        (cat.t("tile.response"), opt_pct(h.response_rate_pct)),
    ];
    let service = r.service_lines(cat);
    let proactive = r.proactive_lines(cat);
    let changes: Vec<String> = r.changes.iter().map(|c| c.render(cat)).collect();
    let lists = [("digest.service", &service), ("digest.proactive", &proactive), ("digest.changes", &changes)];
    html! {
        (DOCTYPE)
        html lang=(cat.locale.tag()) {
            body style="margin:0;padding:16px;background:#f3f4f6;font-family:Arial,'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;color:#1f2937" {
                table role="presentation" width="600" align="center" cellpadding="0" cellspacing="0" style="background:#fff;border-radius:8px;padding:20px" { tr { td {
                    h1 style="font-size:20px;margin:0 0 4px" { (cat.f("digest.title", &[("week", &r.week)])) }
                    p style="margin:0 0 16px;color:#6b7280" { (period(r, cat)) }
                    @if r.empty {
                        p { (cat.t("digest.empty")) }
                    } @else {
                        table role="presentation" width="100%" cellspacing="0" style="border-collapse:collapse;margin-bottom:16px" { tr {
                            @for (label, value) in &tiles {
                                td style="padding:8px;text-align:center;border:1px solid #e5e7eb" {
                                    div style="font-size:22px;font-weight:bold" { (value) }
                                    div style="font-size:12px;color:#6b7280" { (label) }
                                }
                            }
                        } }
                        p style="margin:0 0 16px" {
                            (cat.f("digest.items_line", &[
                                ("items", &h.feedback), ("customers", &h.customers), ("positive", &h.positive),
                                ("neutral", &h.neutral), ("negative", &h.negative), ("severe", &h.severe), ("triggers", &h.triggers),
                            ]))
                        }
                        @if let Some(estimated) = h.estimated.sentence(cat) {
                            p style="margin:0 0 16px" { (estimated) }
                        }
                        @for (title, lines) in &lists {
                            @if !lines.is_empty() {
                                h2 style=(H2) { (cat.t(title)) }
                                ul style="margin:0;padding-left:20px" { @for line in lines.iter() { li { (line) } } }
                            }
                        }
                        h2 style=(H2) { (cat.t("digest.fix_first")) }
                        @if let Some(why) = &r.why_first {
                            p style="margin:0 0 8px" { strong { (why.render(cat)) } }
                        }
                        ol style="margin:0;padding-left:20px" {
                            @for i in r.issues.iter().take(5) {
                                @let colour = match i.trend {
                                    Trend::Up { .. } | Trend::New => "#dc2626",
                                    Trend::Down { .. } => "#15803d",
                                    Trend::Flat | Trend::Few | Trend::SoFar => "#6b7280",
                                };
                                li style="margin-bottom:10px" {
                                    strong { (i.label(cat.locale.language())) }
                                    " — " (cat.f("digest.issue_figures", &[
                                        ("priority", &format!("{:.0}", i.priority)), ("items", &i.items), ("customers", &i.customers),
                                    ])) " "
                                    span style={ "color:" (colour) } { (i.trend.arrow(cat)) }
                                    ul style="margin:4px 0;padding-left:18px;color:#4b5563;font-size:13px" {
                                        @for reason in &i.reasons { li { (reason.render(cat)) } }
                                    }
                                    @for ex in &i.examples {
                                        blockquote style="margin:4px 0 4px 8px;padding-left:8px;border-left:3px solid #e5e7eb;color:#374151;font-size:13px" { (ex.text) }
                                    }
                                }
                            }
                        }
                        @for image in images {
                            p style="margin:16px 0 0" {
                                img src={ "cid:" (image.content_id) } alt=(image.alt) width="560" style="display:block;max-width:100%;height:auto";
                            }
                        }
                    }
                    @if let Some(url) = dashboard_url {
                        p style="margin-top:20px" { a href=(url) { (cat.t("digest.open_dashboard")) } }
                    }
                } } }
            }
        }
    }
    .into_string()
}

/// The short message for the staff topic (also what its e-mail and SMS subscribers see).
pub fn sns_message(r: &WeeklyReport, dashboard_url: Option<&str>, cat: &Catalogue) -> String {
    let mut out = if r.empty {
        cat.f("sns.empty", &[("week", &r.week), ("from", &r.from), ("to", &r.to)])
    } else {
        let h = &r.headline;
        let mut s = cat.f(
            "sns.summary",
            &[
                ("week", &r.week),
                ("from", &r.from),
                ("to", &r.to),
                ("items", &h.feedback),
                ("ratings", &h.ratings),
                ("csat", &opt_pct(h.csat_pct)),
                ("rate", &opt_pct(h.response_rate_pct)),
            ],
        );
        if let Some(c) = r.changes.first() {
            s.push_str(&cat.f("sns.change", &[("change", &c.render(cat))]));
        }
        if !r.issues.is_empty() {
            s.push_str(&cat.t("sns.fix_first"));
            for i in r.issues.iter().take(3) {
                s.push_str(&cat.f(
                    "sns.issue",
                    &[
                        ("rank", &i.rank),
                        ("issue", &i.label(cat.locale.language())),
                        ("items", &i.items),
                        ("trend", &i.trend.arrow(cat)),
                    ],
                ));
            }
        }
        s
    };
    if let Some(url) = dashboard_url {
        out.push_str(&format!(" {url}"));
    }
    out
}

/// The whole message (built by `mail-builder`): multipart/related (alternative text + HTML, then
/// the inline PNGs the HTML shows by Content-ID). Header values lose any line breaks, so a hostile
/// recipient cannot add headers. `message_id` is unique per message.
pub fn digest_mime(settings: &DigestSettings, r: &WeeklyReport, images: &[InlineImage], message_id: &str) -> Vec<u8> {
    use mail_builder::MessageBuilder;
    use mail_builder::mime::MimePart;
    let cat = settings.locale.catalogue();
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let from = clean(&settings.from_address);
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d).to_owned();
    let text = digest_text(r, settings.dashboard_url.as_deref(), cat);
    let html = digest_html(r, settings.dashboard_url.as_deref(), images, cat);
    let mut parts = vec![MimePart::new(
        "multipart/alternative",
        vec![MimePart::new("text/plain", text), MimePart::new("text/html", html)],
    )];
    parts.extend(
        images
            .iter()
            .map(|image| MimePart::new("image/png", image.png.as_slice()).inline().cid(clean(&image.content_id))),
    );
    MessageBuilder::new()
        .from(from.clone())
        .to(settings.recipients.iter().map(|a| clean(a)).collect::<Vec<_>>())
        .subject(clean(&subject(settings, r)))
        .message_id(format!("{}@{domain}", clean(message_id)))
        .body(MimePart::new("multipart/related", parts))
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedback::config::WeekSettings;
    use feedback::insights::weekly::{Counts, Example};
    use feedback::insights::weekly::{WeekFigures, build_report};

    fn settings() -> DigestSettings {
        DigestSettings {
            weeks: WeekSettings::default(),
            recipients: vec!["ops@shop.example.com".into(), "lead@shop.example.com".into()],
            from_address: "feedback@shop.example.com".into(),
            shop_name: "小店".into(),
            dashboard_url: Some("https://fb.example.com/dashboard".into()),
            lease_seconds: 300,
            locale: feedback::i18n::Locale::En,
        }
    }

    fn en() -> &'static Catalogue {
        Catalogue::of(feedback::i18n::Locale::En)
    }

    fn report() -> WeeklyReport {
        let mut logistics = Counts {
            items: 6,
            severity_sum: 20,
            sentiment_negative: 5,
            customers: 5,
            triggers: 1,
            ..Default::default()
        };
        logistics.examples = vec![Example {
            text: "快递<b>一周</b>还没到，电话 138****5678".into(),
            severity: 4,
            at: "2026-11-17T02:00:00Z".into(),
            reference: None,
        }];
        let now = WeekFigures {
            week: "2026-W47".into(),
            all: Counts {
                items: 20,
                ratings: 8,
                stars: [2, 0, 1, 1, 4],
                sentiment_negative: 6,
                sentiment_positive: 9,
                sentiment_neutral: 5,
                customers: 15,
                follow_ups_sent: 4,
                follow_up_answers: 1,
                estimated: 10,
                estimated_stars_tenths: 320,
                estimated_satisfied_milli: 4_500,
                ..Default::default()
            },
            types: [("logistics".to_owned(), logistics)].into(),
        };
        build_report(
            &now,
            &WeekFigures { week: "2026-W46".into(), ..Default::default() },
            "2026-11-23T01:00:00Z".parse().unwrap(),
        )
    }

    #[test]
    fn the_digest_names_the_week_the_figures_and_the_first_issue() {
        let r = report();
        let s = settings();
        assert_eq!(subject(&s, &r), "[小店] Weekly feedback 2026-W47: CSAT 62.5%, fix first: Shipping and delivery");
        let text = digest_text(&r, s.dashboard_url.as_deref(), en());
        assert!(text.contains("CSAT 62.5% · average 3.63 stars · 8 ratings"), "{text}");
        assert!(text.contains("1. Shipping and delivery — priority") && text.contains("response rate 25.0%"), "{text}");
        let html = digest_html(
            &r,
            s.dashboard_url.as_deref(),
            &[InlineImage { content_id: "ranking".into(), alt: "a<b".into(), png: vec![] }],
            en(),
        );
        assert!(text.contains("Estimated CSAT over all 10 closed conversations: 45.0%"), "{text}");
        assert!(html.contains("src=\"cid:ranking\"") && html.contains("alt=\"a&lt;b\""));
        assert!(html.contains("45.0%") && html.contains("Estimated CSAT, all closed"), "estimate tile and sentence");
        assert!(
            html.contains("快递&lt;b&gt;一周&lt;/b&gt;还没到") && !html.contains("<b>一周"),
            "comments are escaped"
        );
        let sns = sns_message(&r, s.dashboard_url.as_deref(), en());
        assert!(
            sns.starts_with("Feedback 2026-W47 (2026-11-16 to 2026-11-22): 20 items, 8 ratings, CSAT 62.5%"),
            "{sns}"
        );
        assert!(sns.contains("1. Shipping and delivery (6 mentions, new)") && sns.ends_with("/dashboard"), "{sns}");
    }

    #[test]
    fn the_mime_message_is_related_with_inline_images_and_no_header_injection() {
        use mail_parser::{MessageParser, MimeHeaders};
        let mut s = settings();
        s.recipients.push("x@example.com\r\nBcc: evil@example.com".into());
        let image = InlineImage { content_id: "ranking".into(), alt: "ranking".into(), png: b"\x89PNG fake".to_vec() };
        let raw = digest_mime(&s, &report(), &[image], "fl-1");
        assert!(!String::from_utf8_lossy(&raw).contains("\r\nBcc:"));
        let parsed = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.content_type().map(|c| c.subtype()), Some(Some("related")));
        assert!(parsed.subject().unwrap().starts_with("[小店] Weekly feedback 2026-W47"));
        assert_eq!(parsed.to().map(|t| t.iter().count()), Some(3));
        assert!(parsed.body_html(0).unwrap().contains("cid:ranking"));
        assert!(parsed.body_text(0).unwrap().contains("2026-W47"));
        let inline = parsed.attachment(0).unwrap();
        assert_eq!(inline.content_id(), Some("ranking"));
        assert_eq!(inline.contents(), b"\x89PNG fake");
    }

    #[test]
    fn an_empty_week_gets_a_short_digest() {
        let empty = build_report(
            &WeekFigures { week: "2026-W47".into(), ..Default::default() },
            &WeekFigures { week: "2026-W46".into(), ..Default::default() },
            "2026-11-23T01:00:00Z".parse().unwrap(),
        );
        assert_eq!(subject(&settings(), &empty), "[小店] Weekly feedback 2026-W47: no feedback this week");
        assert!(digest_text(&empty, None, en()).contains("No feedback was recorded this week"));
        assert_eq!(
            sns_message(&empty, None, en()),
            "Feedback 2026-W47 (2026-11-16 to 2026-11-22): no feedback this week."
        );
    }

    /// The shop's language is Chinese by default: every part of the digest staff read is Chinese,
    /// the same report rendered from the same phrases.
    #[test]
    fn the_digest_reads_in_chinese() {
        let mut s = settings();
        s.locale = feedback::i18n::Locale::ZhCn;
        let zh = s.locale.catalogue();
        let r = report();
        assert_eq!(subject(&s, &r), "[小店] 2026-W47 每周反馈：CSAT 62.5%，优先解决：物流配送");
        let text = digest_text(&r, s.dashboard_url.as_deref(), zh);
        let html = digest_html(&r, s.dashboard_url.as_deref(), &[], zh);
        let sns = sns_message(&r, s.dashboard_url.as_deref(), zh);
        for part in [&text, &html, &sns] {
            assert!(part.contains("物流配送") && part.contains("优先解决"), "{part}");
        }
        assert!(text.contains("全部 10 个已结束会话的预估满意度：45.0%"), "{text}");
        assert!(html.contains("lang=\"zh-CN\"") && html.contains("打开看板"), "{html}");
        // No English sentence of ours is left: the words that remain are the shop's own (none
        // here), units and figures.
        let english: Vec<&str> = text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() > 3 && !["CSAT", "https", "dashboard"].contains(w) && !w.starts_with("example"))
            .collect();
        assert!(english.is_empty(), "English left in the Chinese digest: {english:?}\n{text}");
        assert!(sns.starts_with("2026-W47 反馈（2026-11-16 至 2026-11-22）"), "{sns}");
    }
}
