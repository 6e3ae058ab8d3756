//! What staff read, in the shop's language: one catalogue per language (`locales/zh-CN.toml`,
//! `locales/en.toml`: strings as data, `{name}` placeholders), the staff locale (the template's
//! `StaffLocale`, a browser's `Accept-Language`), and `Phrase`: a sentence kept as its key and
//! arguments, so a report made once reads in either language.
//!
//! Every key is in both catalogues with the same placeholders, and every key the code names is in
//! them (`tests`); a key missing at run time shows as the key itself, never a panic.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The languages staff can read the service in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Locale {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::ZhCn, Locale::En];

    /// The BCP 47 tag (`lang` attributes, `?lang=`).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }

    /// `zh-CN`, `zh`, `zh-Hans`, `en`, `en-GB` …, any case; another language is `None`.
    pub fn parse(tag: &str) -> Option<Locale> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Locale::ZhCn),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    /// The best of a browser's `Accept-Language` (`zh-CN,zh;q=0.9,en;q=0.8`) among the languages
    /// we have: the highest weight wins, the earlier on a tie; `q=0` means "not this"; `None`
    /// when none is ours (the shop's language applies then).
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',').take(32) {
            let mut bits = part.split(';');
            let Some(locale) = bits.next().and_then(Locale::parse) else { continue };
            let q = bits
                .filter_map(|b| b.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && q.is_finite() && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, l)| l)
    }

    /// The issue-type labels in this language.
    pub fn language(self) -> crate::language::Language {
        match self {
            Locale::ZhCn => crate::language::Language::Zh,
            Locale::En => crate::language::Language::En,
        }
    }

    pub fn catalogue(self) -> &'static Catalogue {
        Catalogue::of(self)
    }
}

/// `STAFF_LOCALE` and `?lang=`: `zh-CN` or `en` (and their variants, see `Locale::parse`).
impl std::str::FromStr for Locale {
    type Err = String;
    fn from_str(s: &str) -> Result<Locale, String> {
        Locale::parse(s).ok_or_else(|| format!("{s:?} is not a staff language: zh-CN or en"))
    }
}

/// One language's strings, by dotted key (`digest.subject`).
#[derive(Debug)]
pub struct Catalogue {
    pub locale: Locale,
    entries: HashMap<String, String>,
}

const ZH_CN: &str = include_str!("../locales/zh-CN.toml");
const EN: &str = include_str!("../locales/en.toml");

impl Catalogue {
    pub fn of(locale: Locale) -> &'static Catalogue {
        static ZH: OnceLock<Catalogue> = OnceLock::new();
        static EN_CAT: OnceLock<Catalogue> = OnceLock::new();
        match locale {
            Locale::ZhCn => ZH.get_or_init(|| Catalogue::parse(Locale::ZhCn, ZH_CN)),
            Locale::En => EN_CAT.get_or_init(|| Catalogue::parse(Locale::En, EN)),
        }
    }

    /// A catalogue from its TOML (tables nest keys: `[digest] subject = "…"` is `digest.subject`).
    /// The built-in ones are checked by the tests; an unreadable one is empty, not a panic.
    pub fn parse(locale: Locale, source: &str) -> Catalogue {
        fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
            for (k, v) in table {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                match v {
                    toml::Value::String(s) => {
                        out.insert(key, s.clone());
                    }
                    toml::Value::Table(t) => flatten(&key, t, out),
                    _ => {}
                }
            }
        }
        let mut entries = HashMap::new();
        match source.parse::<toml::Table>() {
            Ok(table) => flatten("", &table, &mut entries),
            Err(e) => tracing::error!(locale = locale.tag(), error = %e, "catalogue unreadable"),
        }
        Catalogue { locale, entries }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// The string of `key` (the key itself when it is missing).
    pub fn t(&self, key: &str) -> String {
        self.get(key).map_or_else(|| key.to_owned(), str::to_owned)
    }

    /// The string of `key` with its `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &dyn Display)]) -> String {
        let template = self.get(key).unwrap_or(key);
        fill(template, |name| args.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }
}

/// `{name}` → its value; `{{` and `}}` are braces; an unknown name stays as written.
fn fill(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let Some(end) = tail.strip_prefix('{').and_then(|t| t.find('}')) {
            let name = &tail[1..=end];
            match value(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&tail[..end + 2]),
            }
            rest = &tail[end + 2..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The placeholder names of a template, in order.
#[cfg(test)]
fn placeholders(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = fill(template, |name| {
        names.push(name.to_owned());
        None
    });
    names
}

/// An argument of a phrase: text as is, or an issue type shown by its label in the reader's
/// language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Arg {
    IssueType {
        issue_type: String,
    },
    /// Another catalogue string (a part of the sentence).
    Key {
        key: String,
    },
    Text(String),
}

/// A sentence for staff kept as its catalogue key and arguments (numbers already formatted), so
/// the stored weekly report renders in the reader's language. Keys of `weekly.*`, `scorecard.*`
/// and `experiment.*` are stored in reports: rename one and older reports show the key. A report
/// stored before phrases (plain sentences) still reads: a plain string is a phrase whose key is
/// not in the catalogues, so it renders as itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PhraseRepr")]
pub struct Phrase {
    pub key: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Arg>,
}

/// A phrase as the JSON API answers it: its key and arguments, and its `text` in the reader's
/// language, so a client needs no catalogue.
pub fn with_text(phrase: &Phrase, cat: &Catalogue) -> serde_json::Value {
    let mut v = serde_json::to_value(phrase).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("text".into(), serde_json::Value::from(phrase.render(cat)));
    }
    v
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PhraseRepr {
    Sentence(String),
    Keyed {
        key: String,
        #[serde(default)]
        args: BTreeMap<String, Arg>,
    },
}

impl From<PhraseRepr> for Phrase {
    fn from(r: PhraseRepr) -> Phrase {
        match r {
            PhraseRepr::Sentence(text) => Phrase { key: text, args: BTreeMap::new() },
            PhraseRepr::Keyed { key, args } => Phrase { key, args },
        }
    }
}

/// A list of phrases, or one plain sentence as stored before phrases (an experiment's verdict).
pub fn phrases_or_sentence<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Phrase>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Many(Vec<Phrase>),
        One(Phrase),
    }
    Ok(match Either::deserialize(d)? {
        Either::Many(v) => v,
        Either::One(p) => vec![p],
    })
}

impl Phrase {
    pub fn new(key: &str) -> Phrase {
        Phrase { key: key.to_owned(), args: BTreeMap::new() }
    }

    pub fn arg(mut self, name: &str, value: impl Display) -> Phrase {
        self.args.insert(name.to_owned(), Arg::Text(value.to_string()));
        self
    }

    /// An issue type, shown by its label in the reader's language.
    pub fn issue(mut self, name: &str, issue_type: &str) -> Phrase {
        self.args.insert(name.to_owned(), Arg::IssueType { issue_type: issue_type.to_owned() });
        self
    }

    /// A part of the sentence that is itself a catalogue string.
    pub fn key(mut self, name: &str, key: &str) -> Phrase {
        self.args.insert(name.to_owned(), Arg::Key { key: key.to_owned() });
        self
    }

    pub fn render(&self, cat: &Catalogue) -> String {
        let taxonomy = crate::analysis::taxonomy::Taxonomy::builtin();
        let Some(template) = cat.get(&self.key) else {
            // A sentence stored before phrases (or a key no catalogue has): as it was written.
            return self.key.clone();
        };
        fill(template, |name| {
            self.args.get(name).map(|a| match a {
                Arg::Text(s) => s.clone(),
                Arg::Key { key } => cat.t(key),
                Arg::IssueType { issue_type } => taxonomy
                    .get(issue_type)
                    .map_or_else(|| issue_type.clone(), |t| t.label(cat.locale.language()).to_owned()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_in_both_catalogues_with_the_same_placeholders() {
        let (zh, en) = (Catalogue::of(Locale::ZhCn), Catalogue::of(Locale::En));
        assert!(en.keys().count() > 100, "the catalogues are read");
        let mut problems = Vec::new();
        for (a, b) in [(zh, en), (en, zh)] {
            for key in a.keys() {
                match b.get(key) {
                    None => problems.push(format!("{key} is missing in {}", b.locale.tag())),
                    Some(other) => {
                        let (mut x, mut y) = (placeholders(a.t(key).as_str()), placeholders(other));
                        x.sort();
                        y.sort();
                        if x != y {
                            problems.push(format!(
                                "{key}: placeholders {x:?} in {} but {y:?} in {}",
                                a.locale.tag(),
                                b.locale.tag()
                            ));
                        }
                    }
                }
            }
        }
        problems.sort();
        problems.dedup();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_chinese_catalogue_is_chinese() {
        // What may read the same in both: units, marks, figures and product names.
        // Placeholders are names, not words.
        let words = |v: &str| fill(v, |_| Some(String::new()));
        let same_allowed = |v: &str| {
            let v = words(v);
            !v.chars().any(|c| c.is_ascii_alphabetic()) || v.contains("CSAT") || v == "CSV"
        };
        let (zh, en) = (Catalogue::of(Locale::ZhCn), Catalogue::of(Locale::En));
        let untranslated: Vec<&str> =
            en.keys().filter(|k| zh.get(k) == en.get(k) && !same_allowed(en.get(k).unwrap_or(""))).collect();
        assert!(untranslated.is_empty(), "not translated: {untranslated:?}");
        let latin_only: Vec<&str> = zh
            .keys()
            .filter(|k| {
                let v = words(zh.get(k).unwrap_or(""));
                let v = v.as_str();
                let letters = v.chars().filter(|c| c.is_alphabetic()).count();
                letters > 0 && v.chars().all(|c| !('\u{4E00}'..='\u{9FFF}').contains(&c)) && !same_allowed(v)
            })
            .collect();
        assert!(latin_only.is_empty(), "zh-CN strings without Chinese: {latin_only:?}");
    }

    /// Every key the code names (a string literal `"<section>.<name>"` whose section is one of
    /// the catalogues') is in the catalogues: a string added in code without its translations
    /// fails here.
    #[test]
    fn every_key_the_code_names_is_in_the_catalogues() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        for dir in ["shared/domain/src", "shared/lambda/src", "shared/aws/src", "functions"] {
            collect(&root.join(dir), &mut files);
        }
        assert!(files.len() > 20, "the sources are found");
        let en = Catalogue::of(Locale::En);
        let sections: std::collections::BTreeSet<&str> = en.keys().filter_map(|k| k.split('.').next()).collect();
        let mut used = 0;
        let mut missing = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("i18n.rs")) {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for literal in text.split('"').skip(1).step_by(2) {
                let Some((section, rest)) = literal.split_once('.') else { continue };
                let keyish = !rest.is_empty()
                    && literal.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
                if !keyish || !sections.contains(section) {
                    continue;
                }
                used += 1;
                if en.get(literal).is_none() {
                    missing.push(format!("{literal} ({})", file.display()));
                }
            }
        }
        assert!(used > 100, "keys are found in the code ({used})");
        assert!(missing.is_empty(), "keys named in code but in no catalogue: {missing:#?}");
    }

    fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn placeholders_fill_and_braces_escape() {
        assert_eq!(fill("{a} of {b}, {{x}} {c}", |n| (n != "c").then(|| n.to_uppercase())), "A of B, {x} {c}");
        assert_eq!(placeholders("{n} 条, {pct}%"), vec!["n", "pct"]);
        assert_eq!(fill("unclosed {a", |_| Some("x".into())), "unclosed {a");
    }

    #[test]
    fn locales_from_tags_and_accept_language() {
        assert_eq!(Locale::parse("zh-Hans-CN"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("EN_gb"), Some(Locale::En));
        assert_eq!(Locale::parse("fr"), None);
        assert_eq!(Locale::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Some(Locale::ZhCn));
        assert_eq!(Locale::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Locale::En));
        assert_eq!(Locale::from_accept_language("fr-FR, en;q=0.5, zh;q=0.7"), Some(Locale::ZhCn));
        assert_eq!(Locale::from_accept_language("zh;q=0, en;q=0.1"), Some(Locale::En));
        assert_eq!(Locale::from_accept_language("de, fr;q=0.5"), None);
        assert_eq!(Locale::from_accept_language(""), None);
        assert_eq!(serde_json::to_string(&Locale::ZhCn).unwrap(), "\"zh-CN\"");
    }

    #[test]
    fn a_phrase_renders_in_either_language_and_survives_storage() {
        let p = Phrase::new("weekly.change.new_in_top").issue("issue", "logistics");
        let stored: Phrase = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(stored, p);
        assert!(p.render(Catalogue::of(Locale::En)).starts_with("Shipping and delivery"));
        assert!(p.render(Catalogue::of(Locale::ZhCn)).contains("物流配送"));
        assert_eq!(Phrase::new("no.such.key").render(Catalogue::of(Locale::En)), "no.such.key");
    }

    /// A report stored before phrases (its sentences plain strings) still reads, as it was.
    #[test]
    fn a_report_stored_before_phrases_still_reads() {
        let old: Phrase = serde_json::from_str("\"CSAT 50.0% → 60.0% (+10.0 pts) {{x}} {y}\"").unwrap();
        assert_eq!(old.render(Catalogue::of(Locale::ZhCn)), "CSAT 50.0% → 60.0% (+10.0 pts) {{x}} {y}");
        #[derive(Deserialize)]
        struct Verdict {
            #[serde(deserialize_with = "phrases_or_sentence")]
            verdict: Vec<Phrase>,
        }
        let v: Verdict = serde_json::from_str(r#"{"verdict": "no difference shown at 95%"}"#).unwrap();
        assert_eq!(v.verdict[0].render(Catalogue::of(Locale::En)), "no difference shown at 95%");
        let v: Verdict = serde_json::from_str(r#"{"verdict": [{"key": "experiment.no_difference"}]}"#).unwrap();
        assert_eq!(v.verdict[0].render(Catalogue::of(Locale::ZhCn)), "在 95% 置信水平下没有显示差异");
    }
}
