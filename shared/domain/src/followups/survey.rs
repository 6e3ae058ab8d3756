//! The research panel: customers who agreed to take part (`consent.research` on their contact)
//! are invited by staff to short surveys whose questions are data (`rules/surveys.toml`: stars,
//! one choice, text). The invitation is a follow-up like any other (the run's consent per channel,
//! opt-outs, quiet hours and the one fatigue budget), sent with a signed link to `/s/{token}`; the
//! answers are kept once per customer and survey, text answers analysed like comments (sentiment,
//! issue types, severity; contacts masked), and reported per survey.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::analysis::sentiment::Polarity;
use crate::errors::StoreError;
use crate::language::Language;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    Stars,
    Choice,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub id: String,
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub kind: QuestionKind,
    pub zh: String,
    pub en: String,
    #[serde(default, rename = "option", skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    pub id: String,
    pub title_zh: String,
    pub title_en: String,
    pub intro_zh: String,
    pub intro_en: String,
    #[serde(rename = "question")]
    pub questions: Vec<Question>,
}

fn pick<'a>(language: Language, zh: &'a str, en: &'a str) -> &'a str {
    match language {
        Language::Zh => zh,
        Language::En => en,
    }
}

impl Choice {
    pub fn label(&self, language: Language) -> &str {
        pick(language, &self.zh, &self.en)
    }
}

impl Question {
    pub fn prompt(&self, language: Language) -> &str {
        pick(language, &self.zh, &self.en)
    }
}

/// The most characters a text answer keeps (as a rating's comment).
pub const TEXT_ANSWER_MAX_CHARS: usize = crate::validate::COMMENT_MAX_CHARS;

impl Survey {
    pub fn title(&self, language: Language) -> &str {
        pick(language, &self.title_zh, &self.title_en)
    }

    pub fn intro(&self, language: Language) -> &str {
        pick(language, &self.intro_zh, &self.intro_en)
    }

    /// Reads the survey page's form (field = question id): each question may be left out, an
    /// answer needs at least one; a value that is not an answer to its question is named.
    /// Text answers are cleaned and cut, but not analysed here.
    pub fn read_form(&self, form: &BTreeMap<String, String>) -> Result<Vec<(String, RawAnswer)>, Vec<String>> {
        let mut answers = Vec::new();
        let mut problems = Vec::new();
        for q in &self.questions {
            let Some(value) = form.get(&q.id).map(|v| v.trim()).filter(|v| !v.is_empty()) else { continue };
            let answer = match q.kind {
                QuestionKind::Stars => value.parse::<u8>().ok().filter(|s| (1..=5).contains(s)).map(RawAnswer::Stars),
                QuestionKind::Choice => {
                    q.options.iter().find(|o| o.id == value).map(|o| RawAnswer::Choice(o.id.clone()))
                }
                QuestionKind::Text => {
                    let text: String = crate::validate::clean_text(value).chars().take(TEXT_ANSWER_MAX_CHARS).collect();
                    (!text.is_empty()).then_some(RawAnswer::Text(text))
                }
            };
            match answer {
                Some(a) => answers.push((q.id.clone(), a)),
                None => problems.push(q.id.clone()),
            }
        }
        if answers.is_empty() && problems.is_empty() {
            problems.push(String::new());
        }
        if problems.is_empty() { Ok(answers) } else { Err(problems) }
    }
}

/// An answer as the form gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAnswer {
    Stars(u8),
    Choice(String),
    Text(String),
}

/// An answer as kept: a text with contacts masked, and its analysis once the stream's analysis
/// function made it (the page's function carries no models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnswerValue {
    Stars {
        stars: u8,
    },
    Choice {
        option: String,
    },
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        analysis: Option<TextAnalysis>,
    },
}

/// A text answer read like a comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAnalysis {
    pub sentiment: Polarity,
    pub issue_types: Vec<String>,
    pub severity: u8,
}

/// The response with its text answers analysed (those already analysed are kept as they are).
pub fn analyse_response(analyzer: &mut crate::analysis::Analyzer, response: &SurveyResponse) -> SurveyResponse {
    let mut out = response.clone();
    for answer in &mut out.answers {
        if let AnswerValue::Text { text, analysis: analysis @ None } = &mut answer.value {
            let a = analyzer.analyze(text, None);
            *analysis = Some(TextAnalysis {
                sentiment: a.sentiment.label,
                issue_types: a.issues.iter().map(|i| i.issue_type.to_owned()).collect(),
                severity: a.severity,
            });
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    #[serde(flatten)]
    pub value: AnswerValue,
}

/// One customer's answers to one survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyResponse {
    pub survey_id: String,
    pub customer_id: String,
    pub answers: Vec<Answer>,
    pub answered_at: Timestamp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    survey: Vec<Survey>,
}

/// The shop's surveys.
#[derive(Debug, Clone, PartialEq)]
pub struct Surveys {
    surveys: Vec<Survey>,
}

fn is_slug(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Surveys {
    /// Reads and checks survey definitions: ids (surveys, questions, options) are `a-z 0-9 -` and
    /// unique where they meet; a choice has at least two options, other kinds none.
    pub fn from_toml(text: &str) -> Result<Surveys, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = std::collections::BTreeSet::new();
        for s in &file.survey {
            if !is_slug(&s.id) || !seen.insert(s.id.as_str()) {
                return Err(format!("survey id {:?} is not a unique a-z0-9- id", s.id));
            }
            if s.questions.is_empty() {
                return Err(format!("survey {} has no questions", s.id));
            }
            let mut questions = std::collections::BTreeSet::new();
            for q in &s.questions {
                if !is_slug(&q.id) || !questions.insert(q.id.as_str()) {
                    return Err(format!("survey {}: question id {:?} is not a unique a-z0-9- id", s.id, q.id));
                }
                let options: std::collections::BTreeSet<&str> = q.options.iter().map(|o| o.id.as_str()).collect();
                let fits = match q.kind {
                    QuestionKind::Choice => q.options.len() >= 2 && options.len() == q.options.len(),
                    _ => q.options.is_empty(),
                };
                if !fits || !options.iter().all(|o| is_slug(o)) {
                    return Err(format!(
                        "survey {}: question {} needs two or more unique options if a choice, none otherwise",
                        s.id, q.id
                    ));
                }
            }
        }
        Ok(Surveys { surveys: file.survey })
    }

    /// The shop's surveys (`rules/surveys.toml`).
    pub fn builtin() -> &'static Surveys {
        static S: std::sync::OnceLock<Surveys> = std::sync::OnceLock::new();
        S.get_or_init(|| {
            Surveys::from_toml(include_str!("../../rules/surveys.toml")).expect("rules/surveys.toml is tested")
        })
    }

    pub fn get(&self, id: &str) -> Option<&Survey> {
        self.surveys.iter().find(|s| s.id == id)
    }

    pub fn all(&self) -> &[Survey] {
        &self.surveys
    }
}

/// The follow-up queue's id of an invitation: never a conversation id (those start with a letter
/// or digit), and neither id contains `~`.
pub fn invitation_key(survey_id: &str, customer_id: &str) -> String {
    format!("~survey~{survey_id}~{customer_id}")
}

/// The survey and customer of an invitation's key.
pub fn invitation_of(key: &str) -> Option<(&str, &str)> {
    let (survey, customer) = key.strip_prefix("~survey~")?.split_once('~')?;
    (!survey.is_empty() && !customer.is_empty() && !customer.contains('~')).then_some((survey, customer))
}

/// What inviting one customer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invited {
    /// Queued: the next follow-up run sends it (if consent still holds and the fatigue budget and
    /// quiet hours allow).
    Queued,
    AlreadyInvited,
    /// No contact with `consent.research`: not invited.
    NotInPanel,
}

/// Where the panel's invitations and answers live.
pub trait SurveyStore {
    /// The customer's locale if they are in the panel (a contact with research consent).
    fn panel_member(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Option<Option<String>>, StoreError>> + Send;
    /// Queues the invitation (a follow-up of kind survey, due `now`) and marks the customer
    /// invited, together and once: `false` if already invited.
    fn invite(
        &self,
        survey_id: &str,
        customer_id: &str,
        locale: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn answered(&self, survey_id: &str, customer_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Keeps a response once: `false` if the customer answered this survey before.
    fn save_response(&self, response: &SurveyResponse) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// How many were invited, and every response.
    fn survey_state(
        &self,
        survey_id: &str,
    ) -> impl Future<Output = Result<(u64, Vec<SurveyResponse>), StoreError>> + Send;
}

/// The most customers one invitation call takes.
pub const INVITE_MAX: usize = 100;

/// Invites customers of the panel to a survey, each once.
pub async fn invite(
    store: &impl SurveyStore,
    survey: &Survey,
    customer_ids: &[String],
    now: Timestamp,
) -> Result<Vec<(String, Invited)>, StoreError> {
    let mut out = Vec::with_capacity(customer_ids.len());
    for customer in customer_ids {
        let outcome = match store.panel_member(customer).await? {
            None => Invited::NotInPanel,
            Some(locale) => {
                if store.invite(&survey.id, customer, locale.as_deref(), now).await? {
                    Invited::Queued
                } else {
                    Invited::AlreadyInvited
                }
            }
        };
        out.push((customer.clone(), outcome));
    }
    Ok(out)
}

/// `{"customer_ids": [...]}`: 1 to `INVITE_MAX` customer ids, repeats dropped.
pub fn invitation_body(body: &[u8]) -> Result<Vec<String>, crate::validate::InputError> {
    use crate::validate::{FieldError, InputError, json_object};
    use serde_json::Value;
    let object = json_object(body, 16 * 1024)?;
    let mut errors: Vec<FieldError> = object
        .keys()
        .filter(|k| k.as_str() != "customer_ids")
        .map(|k| FieldError::new(k, "unknown_field", "is not a known field; expected customer_ids"))
        .collect();
    let mut ids: Vec<String> = Vec::new();
    match object.get("customer_ids") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= INVITE_MAX => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(|s| crate::validate::check_id(&format!("customer_ids[{i}]"), s)) {
                    Some(Ok(id)) if !ids.contains(&id) => ids.push(id),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => errors.push(e),
                    None => errors.push(FieldError::new(format!("customer_ids[{i}]"), "type", "a customer id")),
                }
            }
        }
        Some(Value::Array(_)) => {
            errors.push(FieldError::new("customer_ids", "length", format!("1 to {INVITE_MAX} customer ids")))
        }
        Some(_) => errors.push(FieldError::new("customer_ids", "type", "a list of customer ids")),
        None => errors.push(FieldError::new("customer_ids", "required", "is required")),
    }
    if errors.is_empty() { Ok(ids) } else { Err(InputError::Invalid(errors)) }
}

/// The page a survey link shows.
#[derive(Debug, Clone, PartialEq)]
pub enum SurveyPage {
    Form {
        survey: Survey,
        problems: Vec<String>,
    },
    Thanks,
    AlreadyAnswered,
    Expired,
    /// Forged, malformed, for another purpose, or for a survey no longer run.
    Invalid,
}

/// `GET` or `POST` of `/s/{token}`. GET never writes. Text answers are kept with contacts masked;
/// the stream's analysis function reads them like comments (`analyse_response`).
pub async fn open_survey(
    signer: &super::link::LinkSigner,
    links: &impl super::link::LinkStore,
    store: &impl SurveyStore,
    surveys: &Surveys,
    token: &str,
    form: Option<&BTreeMap<String, String>>,
    now: Timestamp,
) -> Result<(SurveyPage, Language), StoreError> {
    use super::link::{LinkError, LinkPurpose};
    let link = match signer.verify_for(LinkPurpose::Survey, token, now) {
        Ok(link) => link,
        Err(LinkError::Expired(_)) => return Ok((SurveyPage::Expired, Language::Zh)),
        Err(_) => return Ok((SurveyPage::Invalid, Language::Zh)),
    };
    let Some((survey_id, customer_id)) = invitation_of(&link.conversation_id) else {
        return Ok((SurveyPage::Invalid, Language::Zh));
    };
    let (Some(survey), Some((_, locale))) = (surveys.get(survey_id), links.follow_up_of(&link.conversation_id).await?)
    else {
        return Ok((SurveyPage::Invalid, Language::Zh));
    };
    let language = locale.as_deref().and_then(Language::of_locale).unwrap_or(Language::Zh);
    let Some(form) = form else {
        return Ok((
            if store.answered(survey_id, customer_id).await? {
                SurveyPage::AlreadyAnswered
            } else {
                SurveyPage::Form { survey: survey.clone(), problems: Vec::new() }
            },
            language,
        ));
    };
    let raw = match survey.read_form(form) {
        Ok(raw) => raw,
        Err(problems) => return Ok((SurveyPage::Form { survey: survey.clone(), problems }, language)),
    };
    let answers = raw
        .into_iter()
        .map(|(question, a)| Answer {
            question,
            value: match a {
                RawAnswer::Stars(stars) => AnswerValue::Stars { stars },
                RawAnswer::Choice(option) => AnswerValue::Choice { option },
                RawAnswer::Text(text) => {
                    AnswerValue::Text { text: crate::pii::mask_contacts(&text).into_owned(), analysis: None }
                }
            },
        })
        .collect();
    let response = SurveyResponse {
        survey_id: survey_id.to_owned(),
        customer_id: customer_id.to_owned(),
        answers,
        answered_at: now,
    };
    let page = if store.save_response(&response).await? { SurveyPage::Thanks } else { SurveyPage::AlreadyAnswered };
    Ok((page, language))
}

/// One question's answers, summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QuestionReport {
    pub id: String,
    pub kind: String,
    pub prompt_zh: String,
    pub prompt_en: String,
    pub answered: u64,
    /// Stars: how many gave 1★..5★, and the average.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stars: Option<[u64; 5]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_stars: Option<f64>,
    /// Choice: (option id, English label, count), in the survey's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<(String, String, u64)>,
    /// Text: the sentiment split, the issue types named, and up to five answers, most severe first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<[u64; 3]>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub issue_types: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyReport {
    pub id: String,
    pub title_zh: String,
    pub title_en: String,
    pub invited: u64,
    pub answered: u64,
    /// Answered per invited, percent.
    pub response_rate_pct: Option<f64>,
    pub questions: Vec<QuestionReport>,
}

impl SurveyReport {
    pub fn title(&self, language: Language) -> &str {
        pick(language, &self.title_zh, &self.title_en)
    }
}

impl QuestionReport {
    pub fn prompt(&self, language: Language) -> &str {
        pick(language, &self.prompt_zh, &self.prompt_en)
    }
}

/// A survey's report from its invitations and responses (answers to questions no longer asked
/// are left out).
pub fn report(survey: &Survey, invited: u64, responses: &[SurveyResponse]) -> SurveyReport {
    let questions = survey
        .questions
        .iter()
        .map(|q| {
            let mut r = QuestionReport {
                id: q.id.clone(),
                kind: format!("{:?}", q.kind).to_lowercase(),
                prompt_zh: q.zh.clone(),
                prompt_en: q.en.clone(),
                ..Default::default()
            };
            let mut stars = [0u64; 5];
            let mut choices: Vec<(String, String, u64)> =
                q.options.iter().map(|o| (o.id.clone(), o.en.clone(), 0)).collect();
            let mut sentiment = [0u64; 3];
            let mut texts: Vec<(u8, &str)> = Vec::new();
            for a in responses.iter().flat_map(|r| &r.answers).filter(|a| a.question == q.id) {
                match (&q.kind, &a.value) {
                    (QuestionKind::Stars, AnswerValue::Stars { stars: s }) if (1..=5).contains(s) => {
                        stars[usize::from(*s - 1)] += 1;
                    }
                    (QuestionKind::Choice, AnswerValue::Choice { option }) => {
                        let Some(c) = choices.iter_mut().find(|c| &c.0 == option) else { continue };
                        c.2 += 1;
                    }
                    (QuestionKind::Text, AnswerValue::Text { text, analysis }) => {
                        // Not analysed yet (the stream's analysis follows within seconds): counted
                        // as an answer, not in the sentiment split.
                        if let Some(a) = analysis {
                            sentiment[match a.sentiment {
                                Polarity::Negative => 0,
                                Polarity::Neutral => 1,
                                Polarity::Positive => 2,
                            }] += 1;
                            for t in &a.issue_types {
                                *r.issue_types.entry(t.clone()).or_default() += 1;
                            }
                        }
                        texts.push((analysis.as_ref().map_or(0, |a| a.severity), text));
                    }
                    _ => continue,
                }
                r.answered += 1;
            }
            match q.kind {
                QuestionKind::Stars => {
                    let n: u64 = stars.iter().sum();
                    let sum: u64 = stars.iter().enumerate().map(|(i, c)| (i as u64 + 1) * c).sum();
                    r.average_stars = (n > 0).then(|| (sum as f64 * 100.0 / n as f64).round() / 100.0);
                    r.stars = Some(stars);
                }
                QuestionKind::Choice => r.choices = choices,
                QuestionKind::Text => {
                    texts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
                    let mut seen = std::collections::HashSet::new();
                    r.examples = texts
                        .into_iter()
                        .filter(|(_, t)| seen.insert(crate::insights::weekly::example_key(t)))
                        .take(5)
                        .map(|(_, t)| t.to_owned())
                        .collect();
                    r.sentiment = Some(sentiment);
                }
            }
            r
        })
        .collect();
    let answered = responses.len() as u64;
    SurveyReport {
        id: survey.id.clone(),
        title_zh: survey.title_zh.clone(),
        title_en: survey.title_en.clone(),
        invited,
        answered,
        response_rate_pct: (invited > 0).then(|| (answered as f64 * 1000.0 / invited as f64).round() / 10.0),
        questions,
    }
}

/// Every survey's report.
pub async fn survey_reports(store: &impl SurveyStore, surveys: &Surveys) -> Result<Vec<SurveyReport>, StoreError> {
    let mut out = Vec::new();
    for s in surveys.all() {
        let (invited, responses) = store.survey_state(&s.id).await?;
        out.push(report(s, invited, &responses));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey() -> Survey {
        Surveys::builtin().get("delivery-2026-12").unwrap().clone()
    }

    #[test]
    fn the_shops_surveys_read_and_bad_ones_are_refused() {
        let s = survey();
        assert_eq!(
            s.questions.iter().map(|q| q.kind.clone()).collect::<Vec<_>>(),
            [QuestionKind::Stars, QuestionKind::Choice, QuestionKind::Text]
        );
        let head = "[[survey]]\nid = \"s\"\ntitle_zh = \"t\"\ntitle_en = \"t\"\nintro_zh = \"i\"\nintro_en = \"i\"\n";
        let q = |extra: &str| format!("{head}[[survey.question]]\nid = \"q\"\nzh = \"q\"\nen = \"q\"\n{extra}");
        assert!(Surveys::from_toml(&q("kind = \"stars\"")).is_ok());
        assert!(Surveys::from_toml(&q("kind = \"choice\"")).is_err(), "a choice without options");
        assert!(Surveys::from_toml(&q("kind = \"slider\"")).is_err());
        assert!(Surveys::from_toml(&q("kind = \"stars\"\ncolour = 1")).is_err());
        assert!(Surveys::from_toml(head).is_err(), "no questions");
        assert!(Surveys::from_toml(&q("kind = \"stars\"").replace("id = \"s\"", "id = \"S s\"")).is_err());
    }

    #[test]
    fn forms_are_read_per_question_and_every_bad_value_is_named() {
        let s = survey();
        let form = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let ok =
            s.read_form(&form(&[("overall", "4"), ("matters", "speed"), ("improve", "  快一点\r\n "), ("x", "y")]));
        assert_eq!(
            ok.unwrap(),
            [
                ("overall".to_owned(), RawAnswer::Stars(4)),
                ("matters".to_owned(), RawAnswer::Choice("speed".into())),
                ("improve".to_owned(), RawAnswer::Text("快一点".into()))
            ]
        );
        assert_eq!(
            s.read_form(&form(&[("overall", "6"), ("matters", "teleport")])),
            Err(vec!["overall".to_owned(), "matters".to_owned()])
        );
        assert!(s.read_form(&form(&[("improve", "   ")])).is_err(), "nothing answered");
        assert_eq!(s.read_form(&form(&[("matters", "updates")])).unwrap().len(), 1, "questions may be left out");
    }

    #[test]
    fn invitation_keys_round_trip_and_are_never_conversation_ids() {
        let key = invitation_key("delivery-2026-12", "u-1");
        assert_eq!(invitation_of(&key), Some(("delivery-2026-12", "u-1")));
        assert!(crate::validate::check_id("conversation_id", &key).is_err());
        assert_eq!(invitation_of("~delay~e-1"), None);
        assert_eq!(invitation_of("~survey~s"), None);
    }

    #[test]
    fn a_report_sums_each_kind_of_question() {
        let s = survey();
        let response = |customer: &str, stars: u8, option: &str, text: Option<(&str, Polarity, u8)>| SurveyResponse {
            survey_id: s.id.clone(),
            customer_id: customer.into(),
            answers: [
                Some(Answer { question: "overall".into(), value: AnswerValue::Stars { stars } }),
                Some(Answer { question: "matters".into(), value: AnswerValue::Choice { option: option.into() } }),
                text.map(|(t, sentiment, severity)| Answer {
                    question: "improve".into(),
                    value: AnswerValue::Text {
                        text: t.into(),
                        analysis: Some(TextAnalysis { sentiment, issue_types: vec!["logistics".into()], severity }),
                    },
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
            answered_at: "2026-12-01T00:00:00Z".parse().unwrap(),
        };
        let r = report(
            &s,
            4,
            &[
                response("u-1", 5, "speed", None),
                response("u-2", 2, "speed", Some(("太慢了！", Polarity::Negative, 3))),
                response("u-3", 4, "packaging", Some(("太慢了", Polarity::Negative, 3))),
            ],
        );
        assert_eq!((r.invited, r.answered, r.response_rate_pct), (4, 3, Some(75.0)));
        assert_eq!((r.questions[0].stars, r.questions[0].average_stars), (Some([0, 1, 0, 1, 1]), Some(3.67)));
        assert_eq!(r.questions[1].choices[0], ("speed".to_owned(), "Speed".to_owned(), 2));
        assert_eq!(r.questions[1].choices[2].2, 1);
        assert_eq!((r.questions[2].answered, r.questions[2].sentiment), (2, Some([2, 0, 0])));
        assert_eq!(r.questions[2].examples.len(), 1, "the same answer once");
        assert_eq!(r.questions[2].issue_types["logistics"], 2);
    }

    #[test]
    fn invitation_bodies_are_read_strictly() {
        assert_eq!(invitation_body(br#"{"customer_ids": ["u-1", "u-2", "u-1"]}"#).unwrap(), ["u-1", "u-2"]);
        for bad in [&br#"{"customer_ids": []}"#[..], br#"{"customer_ids": ["~x"]}"#, br#"{"ids": ["u-1"]}"#, b"[]"] {
            assert!(invitation_body(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
