//! Sent e-mails read back, for tests: what a mail client would show (decoded by `mail-parser`,
//! whatever transfer encoding the builder chose), not the bytes on the wire.

use mail_parser::{MessageParser, MimeHeaders};

#[derive(Debug, Clone, Default)]
pub struct ReadMail {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Inline parts: (Content-ID, bytes).
    pub inline: Vec<(String, Vec<u8>)>,
    /// The `List-Unsubscribe` header's value, as sent.
    pub list_unsubscribe: Option<String>,
}

/// Reads a raw MIME message; `None` when it is not one.
pub fn read(raw: impl AsRef<[u8]>) -> Option<ReadMail> {
    let m = MessageParser::default().parse(raw.as_ref())?;
    Some(ReadMail {
        to: m.to().map(|to| to.iter().filter_map(|a| a.address().map(str::to_owned)).collect()).unwrap_or_default(),
        subject: m.subject().unwrap_or_default().to_owned(),
        text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        inline: m
            .attachments()
            .map(|a| (a.content_id().unwrap_or_default().to_owned(), a.contents().to_vec()))
            .collect(),
        list_unsubscribe: m.header_raw("List-Unsubscribe").map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")),
    })
}
