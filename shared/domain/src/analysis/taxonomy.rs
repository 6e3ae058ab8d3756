//! The issue-type taxonomy (`rules/issue_types.toml`): what a piece of feedback is about.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::language::Language;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueType {
    pub id: String,
    pub zh: String,
    pub en: String,
    /// Labels of the training data that mean this type (see the file's header).
    #[serde(default)]
    pub zhijiang: Vec<String>,
    #[serde(default)]
    pub bitext: Vec<String>,
    /// Words that name the type where the data is thin.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Words that name the type in feedback (a rating's comment, a review) but not in a chat turn,
    /// where the customer talks to the shop's service and of the merchant as a party to the order
    /// (刚联系客服, 商家不同意退货): there they say who, not what the problem is about.
    #[serde(default)]
    pub feedback_keywords: Vec<String>,
}

impl IssueType {
    pub fn label(&self, language: Language) -> &str {
        match language {
            Language::Zh => &self.zh,
            Language::En => &self.en,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Taxonomy {
    #[serde(rename = "issue_type")]
    pub issue_types: Vec<IssueType>,
}

impl Taxonomy {
    pub fn builtin() -> &'static Taxonomy {
        static T: OnceLock<Taxonomy> = OnceLock::new();
        T.get_or_init(|| {
            toml::from_str(include_str!("../../rules/issue_types.toml")).expect("issue_types.toml is tested")
        })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.issue_types.iter().any(|t| t.id == id)
    }

    pub fn get(&self, id: &str) -> Option<&IssueType> {
        self.issue_types.iter().find(|t| t.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.issue_types.iter().map(|t| t.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_taxonomy_has_unique_snake_case_ids_and_both_labels() {
        let t = Taxonomy::builtin();
        let ids: Vec<&str> = t.ids().collect();
        assert!(ids.len() >= 10 && ids.contains(&"other") && ids.contains(&"logistics"));
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "duplicate ids");
        for it in &t.issue_types {
            assert!(it.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", it.id);
            assert!(!it.zh.is_empty() && !it.en.is_empty());
        }
    }
}
