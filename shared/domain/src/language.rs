//! The two languages the shop serves customers in.

use serde::{Deserialize, Serialize};

/// The two languages the shop serves. Chinese is the default: most customers write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Zh,
    En,
}

impl Language {
    /// Chinese if the text has any Han character, English if it has Latin letters and no Han,
    /// otherwise (emoji, digits) Chinese.
    pub fn of_text(text: &str) -> Language {
        let mut latin = false;
        for c in text.chars() {
            if matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}') {
                return Language::Zh;
            }
            latin |= c.is_ascii_alphabetic();
        }
        if latin { Language::En } else { Language::Zh }
    }

    pub fn of_locale(locale: &str) -> Option<Language> {
        match locale.split('-').next()? {
            "zh" => Some(Language::Zh),
            "en" => Some(Language::En),
            _ => None,
        }
    }

    pub fn locale(self) -> &'static str {
        match self {
            Language::Zh => "zh-CN",
            Language::En => "en",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_follows_the_script() {
        assert_eq!(Language::of_text("still not fixed"), Language::En);
        assert_eq!(Language::of_text("refund 还没到"), Language::Zh);
        assert_eq!(Language::of_text("😡😡"), Language::Zh);
        assert_eq!(Language::of_locale("en-GB"), Some(Language::En));
        assert_eq!(Language::of_locale("fr"), None);
    }
}
