//! The Monday digest's messages: subject, text, HTML with inline charts, the raw MIME for SES and
//! the short message for the staff topic.

use feedback::insights::weekly::{RankedIssue, WeeklyReport};
use feedback::reporting::{DigestComposer, DigestSettings, InlineImage};

/// The digest as the weekly run sends it: charts (drawn by `charts`, none for an empty week) inline
/// in the HTML part of the e-mail; the staff topic gets the short text.
pub struct Composer<F>(pub F);

impl<F: Fn(&WeeklyReport) -> Result<Vec<InlineImage>, String>> DigestComposer for Composer<F> {
    fn email(&self, settings: &DigestSettings, report: &WeeklyReport) -> Result<Vec<u8>, String> {
        let images = if report.empty { Vec::new() } else { (self.0)(report)? };
        Ok(digest_mime(settings, report, &images, &format!("fl-{}", ulid::Ulid::new())))
    }

    fn staff_message(&self, settings: &DigestSettings, report: &WeeklyReport) -> (String, String) {
        // SNS subjects are ASCII (the shop's name may not be).
        let subject = format!("[Feedback Loop] Weekly feedback {}", report.week);
        (subject, sns_message(report, settings.dashboard_url.as_deref()))
    }
}

pub fn subject(settings: &DigestSettings, r: &WeeklyReport) -> String {
    let shop = settings.shop_name.replace(['\r', '\n'], " ");
    if r.empty {
        return format!("[{shop}] Weekly feedback {}: no feedback this week", r.week);
    }
    let csat = r.headline.csat_pct.map_or("no ratings".to_owned(), |c| format!("CSAT {c:.1}%"));
    match r.issues.first() {
        Some(top) => format!("[{shop}] Weekly feedback {}: {csat}, fix first: {}", r.week, top.label_en),
        None => format!("[{shop}] Weekly feedback {}: {csat}", r.week),
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.1}{unit}"))
}

fn issue_line(i: &RankedIssue) -> String {
    format!(
        "{}. {} {} — priority {:.0}, {} mentions, {} customers, {}",
        i.rank,
        i.label_en,
        i.label_zh,
        i.priority,
        i.items,
        i.customers,
        i.trend.arrow()
    )
}

/// The plain-text part.
pub fn digest_text(r: &WeeklyReport, dashboard_url: Option<&str>) -> String {
    let mut out = format!("Weekly feedback report {} ({} to {})\n\n", r.week, r.from, r.to);
    if r.empty {
        out.push_str("No feedback was recorded this week: no ratings, no customer messages.\n");
        if let Some(url) = dashboard_url {
            out.push_str(&format!("\nDashboard: {url}\n"));
        }
        return out;
    }
    let h = &r.headline;
    out.push_str(&format!(
        "CSAT {} · average {} stars · {} ratings · {} feedback items from {} customers\n\
         Sentiment: {} positive, {} neutral, {} negative · {} severe · {} complaint triggers\n\
         Follow-ups: {} sent, {} reminders, {} answered (response rate {})\n",
        opt(h.csat_pct, "%"),
        h.average_stars.map_or("–".to_owned(), |s| format!("{s:.2}")),
        h.ratings,
        h.feedback,
        h.customers,
        h.positive,
        h.neutral,
        h.negative,
        h.severe,
        h.triggers,
        h.follow_ups_sent,
        h.reminders_sent,
        h.follow_up_answers,
        opt(h.response_rate_pct, "%"),
    ));
    if let Some(estimated) = h.estimated.sentence() {
        out.push_str(&format!("{estimated}\n"));
    }
    let service = r.service_lines();
    if !service.is_empty() {
        out.push_str("\nHow the service did:\n");
        for line in &service {
            out.push_str(&format!("- {line}\n"));
        }
    }
    let proactive = r.proactive_lines();
    if !proactive.is_empty() {
        out.push_str("\nOffers and proactive messages:\n");
        for line in &proactive {
            out.push_str(&format!("- {line}\n"));
        }
    }
    if !r.changes.is_empty() {
        out.push_str("\nSince last week:\n");
        for c in &r.changes {
            out.push_str(&format!("- {c}\n"));
        }
    }
    out.push_str("\nFix first:\n");
    if let Some(why) = &r.why_first {
        out.push_str(&format!("{why}\n"));
    }
    for i in r.issues.iter().take(5) {
        out.push_str(&format!("\n{}\n", issue_line(i)));
        for reason in &i.reasons {
            out.push_str(&format!("   · {reason}\n"));
        }
        for e in &i.examples {
            out.push_str(&format!("   “{}”\n", e.text));
        }
    }
    if r.issues.is_empty() {
        out.push_str("No problems were reported this week.\n");
    }
    if let Some(url) = dashboard_url {
        out.push_str(&format!("\nDashboard: {url}\n"));
    }
    out
}

/// The HTML part: tables and inline styles (what mail clients render), charts as `cid:` images.
pub fn digest_html(r: &WeeklyReport, dashboard_url: Option<&str>, images: &[InlineImage]) -> String {
    use feedback::insights::weekly::Trend;
    use maud::{DOCTYPE, html};
    const H2: &str = "font-size:16px;margin:16px 0 4px";
    let h = &r.headline;
    let tiles = [
        ("CSAT (4–5★)", opt(h.csat_pct, "%")),
        ("Estimated CSAT, all closed", opt(h.estimated.csat_pct, "%")),
        ("Average stars", h.average_stars.map_or("–".to_owned(), |s| format!("{s:.2}"))),
        ("Ratings", h.ratings.to_string()),
        ("Follow-up response", opt(h.response_rate_pct, "%")),
    ];
    html! {
        (DOCTYPE)
        html {
            body style="margin:0;padding:16px;background:#f3f4f6;font-family:Arial,'PingFang SC','Microsoft YaHei',sans-serif;color:#1f2937" {
                table role="presentation" width="600" align="center" cellpadding="0" cellspacing="0" style="background:#fff;border-radius:8px;padding:20px" { tr { td {
                    h1 style="font-size:20px;margin:0 0 4px" { "Weekly feedback report " (r.week) }
                    p style="margin:0 0 16px;color:#6b7280" { (r.from) " to " (r.to) }
                    @if r.empty {
                        p { "No feedback was recorded this week: no ratings, no customer messages." }
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
                            (h.feedback) " feedback items from " (h.customers) " customers: " (h.positive) " positive, "
                            (h.neutral) " neutral, " (h.negative) " negative; " (h.severe) " severe, " (h.triggers) " complaint triggers."
                        }
                        @if let Some(estimated) = h.estimated.sentence() {
                            p style="margin:0 0 16px" { (estimated) }
                        }
                        @let service = r.service_lines();
                        @if !service.is_empty() {
                            h2 style=(H2) { "How the service did" }
                            ul style="margin:0;padding-left:20px" { @for line in &service { li { (line) } } }
                        }
                        @let proactive = r.proactive_lines();
                        @if !proactive.is_empty() {
                            h2 style=(H2) { "Offers and proactive messages" }
                            ul style="margin:0;padding-left:20px" { @for line in &proactive { li { (line) } } }
                        }
                        @if !r.changes.is_empty() {
                            h2 style=(H2) { "Since last week" }
                            ul style="margin:0;padding-left:20px" { @for c in &r.changes { li { (c) } } }
                        }
                        h2 style=(H2) { "Fix first" }
                        @if let Some(why) = &r.why_first {
                            p style="margin:0 0 8px" { strong { (why) } }
                        }
                        ol style="margin:0;padding-left:20px" {
                            @for i in r.issues.iter().take(5) {
                                @let colour = match i.trend {
                                    Trend::Up { .. } | Trend::New => "#dc2626",
                                    Trend::Down { .. } => "#15803d",
                                    Trend::Flat | Trend::Few | Trend::SoFar => "#6b7280",
                                };
                                li style="margin-bottom:10px" {
                                    strong { (i.label_en) " " (i.label_zh) }
                                    " — priority " (format!("{:.0}", i.priority)) ", " (i.items) " mentions, " (i.customers) " customers, "
                                    span style={ "color:" (colour) } { (i.trend.arrow()) }
                                    ul style="margin:4px 0;padding-left:18px;color:#4b5563;font-size:13px" {
                                        @for reason in &i.reasons { li { (reason) } }
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
                        p style="margin-top:20px" { a href=(url) { "Open the dashboard" } }
                    }
                } } }
            }
        }
    }
    .into_string()
}

/// The short message for the staff topic (also what its e-mail and SMS subscribers see).
pub fn sns_message(r: &WeeklyReport, dashboard_url: Option<&str>) -> String {
    let mut out = if r.empty {
        format!("Feedback {} ({} to {}): no feedback this week.", r.week, r.from, r.to)
    } else {
        let h = &r.headline;
        let mut s = format!(
            "Feedback {} ({} to {}): {} items, {} ratings, CSAT {}, follow-up response {}.",
            r.week,
            r.from,
            r.to,
            h.feedback,
            h.ratings,
            opt(h.csat_pct, "%"),
            opt(h.response_rate_pct, "%")
        );
        if let Some(c) = r.changes.first() {
            s.push_str(&format!(" {c}."));
        }
        if !r.issues.is_empty() {
            s.push_str(" Fix first:");
            for i in r.issues.iter().take(3) {
                s.push_str(&format!(
                    " {}. {} {} ({} mentions, {});",
                    i.rank,
                    i.label_en,
                    i.label_zh,
                    i.items,
                    i.trend.arrow()
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
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let from = clean(&settings.from_address);
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d).to_owned();
    let text = digest_text(r, settings.dashboard_url.as_deref());
    let html = digest_html(r, settings.dashboard_url.as_deref(), images);
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
        }
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
        let text = digest_text(&r, s.dashboard_url.as_deref());
        assert!(text.contains("CSAT 62.5% · average 3.63 stars · 8 ratings"), "{text}");
        assert!(text.contains("1. Shipping and delivery 物流配送") && text.contains("response rate 25.0%"), "{text}");
        let html = digest_html(
            &r,
            s.dashboard_url.as_deref(),
            &[InlineImage { content_id: "ranking".into(), alt: "a<b".into(), png: vec![] }],
        );
        assert!(text.contains("Estimated CSAT over all 10 closed conversations: 45.0%"), "{text}");
        assert!(html.contains("src=\"cid:ranking\"") && html.contains("alt=\"a&lt;b\""));
        assert!(html.contains("45.0%") && html.contains("Estimated CSAT, all closed"), "estimate tile and sentence");
        assert!(
            html.contains("快递&lt;b&gt;一周&lt;/b&gt;还没到") && !html.contains("<b>一周"),
            "comments are escaped"
        );
        let sns = sns_message(&r, s.dashboard_url.as_deref());
        assert!(
            sns.starts_with("Feedback 2026-W47 (2026-11-16 to 2026-11-22): 20 items, 8 ratings, CSAT 62.5%"),
            "{sns}"
        );
        assert!(
            sns.contains("1. Shipping and delivery 物流配送 (6 mentions, new)") && sns.ends_with("/dashboard"),
            "{sns}"
        );
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
        assert!(digest_text(&empty, None).contains("No feedback was recorded this week"));
        assert_eq!(sns_message(&empty, None), "Feedback 2026-W47 (2026-11-16 to 2026-11-22): no feedback this week.");
    }
}
