//! Experiments on reply strategies: the arm of each conversation (stable, by hash, in the shares
//! of `rules/experiments.toml`), and the comparison of the arms with a fixed horizon and a
//! two-proportion test. The arms' outcomes are counted by the scorecards (`ScoreBy::Arm`).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::insights::scorecards::ScoreCounts;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    /// The description for staff reading in Chinese (the English one when empty).
    #[serde(default)]
    pub description_zh: String,
    /// The first day it runs (UTC; conversations before it get no arm).
    pub start: jiff::civil::Date,
    /// Closed conversations each arm needs before a verdict.
    pub horizon: u64,
    pub arm: Vec<Arm>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    pub name: String,
    /// Percent of the conversations.
    pub share: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiments {
    #[serde(default)]
    experiment: Vec<Experiment>,
}

impl Experiments {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let e: Experiments = toml::from_str(text).map_err(|e| e.to_string())?;
        for (i, x) in e.experiment.iter().enumerate() {
            if e.experiment[..i].iter().any(|y| y.name == x.name) {
                return Err(format!("experiment {} is named twice", x.name));
            }
            if x.arm.iter().enumerate().any(|(j, a)| x.arm[..j].iter().any(|b| b.name == a.name)) {
                return Err(format!("experiment {}: an arm is named twice", x.name));
            }
            let total: u32 = x.arm.iter().map(|a| a.share).sum();
            if x.arm.len() < 2 || total != 100 {
                return Err(format!(
                    "experiment {}: at least two arms whose shares add up to 100 (not {total})",
                    x.name
                ));
            }
            if x.name.contains(':') || x.arm.iter().any(|a| a.name.contains(':')) {
                return Err(format!("experiment {}: names may not contain ':'", x.name));
            }
            if x.horizon == 0 {
                return Err(format!("experiment {}: a horizon of at least one conversation", x.name));
            }
        }
        Ok(e)
    }

    /// The shop's experiments (`rules/experiments.toml`).
    pub fn builtin() -> &'static Experiments {
        static E: OnceLock<Experiments> = OnceLock::new();
        E.get_or_init(|| {
            Experiments::from_toml(include_str!("../rules/experiments.toml")).expect("rules/experiments.toml is tested")
        })
    }

    pub fn all(&self) -> &[Experiment] {
        &self.experiment
    }

    /// The arms of a conversation that started on `day`: `(experiment, arm)` for each experiment
    /// running then.
    pub fn arms_of(&self, conversation_id: &str, day: jiff::civil::Date) -> Vec<(String, String)> {
        self.experiment
            .iter()
            .filter(|x| x.start <= day)
            .map(|x| (x.name.clone(), x.arm_of(conversation_id).to_owned()))
            .collect()
    }
}

impl Experiment {
    /// The arm of a conversation: FNV-1a of `<experiment>/<conversation>`, mod 100, into the shares.
    pub fn arm_of(&self, conversation_id: &str) -> &str {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.name.bytes().chain(*b"/").chain(conversation_id.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut point = (h % 100) as u32;
        for a in &self.arm {
            if point < a.share {
                return &a.name;
            }
            point -= a.share;
        }
        &self.arm[self.arm.len() - 1].name
    }
}

/// The day an instant falls on for experiments (UTC: every function agrees without settings).
pub fn day_of(at: crate::Timestamp) -> jiff::civil::Date {
    jiff::tz::TimeZone::UTC.to_datetime(at).date()
}

/// One arm's figures since the experiment started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmFigures {
    pub arm: String,
    pub conversations: u64,
    pub ratings: u64,
    pub csat_pct: Option<f64>,
    pub estimated_csat_pct: Option<f64>,
    pub resolution_pct: Option<f64>,
    pub escalation_pct: Option<f64>,
}

/// One metric compared between the first arm (the control) and another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub metric: String,
    pub arm: String,
    pub control_pct: Option<f64>,
    pub arm_pct: Option<f64>,
    /// Two-sided p-value of the two-proportion z-test; none without data on both sides.
    pub p_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentReport {
    pub name: String,
    pub description: String,
    pub start: String,
    pub horizon: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description_zh: String,
    pub arms: Vec<ArmFigures>,
    pub comparisons: Vec<Comparison>,
    /// In plain words, in the reader's language (`verdict_text`): "warm better than control on
    /// estimated satisfaction, 95%", "no difference shown", "not enough data yet (120 of 200 per
    /// arm)"; one phrase per arm that differs.
    #[serde(deserialize_with = "crate::i18n::phrases_or_sentence")]
    pub verdict: Vec<crate::i18n::Phrase>,
}

impl ExperimentReport {
    /// As the JSON API answers it: the verdict's phrases with their `text`, and the whole verdict
    /// as `verdict_text`, in the reader's language.
    pub fn to_json(&self, cat: &crate::i18n::Catalogue) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        v["verdict"] = serde_json::Value::Array(self.verdict.iter().map(|p| crate::i18n::with_text(p, cat)).collect());
        v["verdict_text"] = serde_json::Value::from(self.verdict_text(cat));
        v
    }

    pub fn description_in(&self, locale: crate::i18n::Locale) -> &str {
        match locale {
            crate::i18n::Locale::ZhCn if !self.description_zh.is_empty() => &self.description_zh,
            _ => &self.description,
        }
    }

    pub fn verdict_text(&self, cat: &crate::i18n::Catalogue) -> String {
        self.verdict.iter().map(|p| p.render(cat)).collect::<Vec<_>>().join(cat.get("list.separator").unwrap_or("; "))
    }
}

/// Compares the arms of `x` from their counts since it started (`arm name → counts`). The first
/// arm is the control. Primary metric: estimated satisfaction (every closed conversation has an
/// estimate, ratings only some); resolution, escalation and rating CSAT are shown beside it.
pub fn compare(x: &Experiment, counts: &[(String, ScoreCounts)]) -> ExperimentReport {
    let of = |arm: &str| counts.iter().find(|(a, _)| a == arm).map(|(_, c)| c.clone()).unwrap_or_default();
    let arms: Vec<ArmFigures> = x
        .arm
        .iter()
        .map(|a| {
            let c = of(&a.name);
            ArmFigures {
                arm: a.name.clone(),
                conversations: c.conversations,
                ratings: c.ratings,
                csat_pct: c.csat_pct(),
                estimated_csat_pct: c.estimated_csat_pct(),
                resolution_pct: rate(c.resolved as f64, c.conversations),
                escalation_pct: rate(c.escalated as f64, c.conversations),
            }
        })
        .collect();
    let control = of(&x.arm[0].name);
    let mut comparisons = Vec::new();
    for a in &x.arm[1..] {
        let c = of(&a.name);
        let metrics: [(&'static str, f64, u64, f64, u64); 4] = [
            (
                "estimated satisfaction",
                control.estimated_satisfied_milli as f64 / 1000.0,
                control.estimated,
                c.estimated_satisfied_milli as f64 / 1000.0,
                c.estimated,
            ),
            ("resolution", control.resolved as f64, control.conversations, c.resolved as f64, c.conversations),
            ("escalation", control.escalated as f64, control.conversations, c.escalated as f64, c.conversations),
            ("rating CSAT", control.satisfied as f64, control.ratings, c.satisfied as f64, c.ratings),
        ];
        for (metric, x1, n1, x2, n2) in metrics {
            comparisons.push(Comparison {
                metric: metric.to_owned(),
                arm: a.name.clone(),
                control_pct: rate(x1, n1),
                arm_pct: rate(x2, n2),
                p_value: two_proportion_p(x1, n1, x2, n2),
            });
        }
    }
    let smallest = arms.iter().map(|a| a.conversations).min().unwrap_or(0);
    use crate::i18n::Phrase;
    let verdict = if smallest < x.horizon {
        vec![Phrase::new("experiment.not_enough").arg("smallest", smallest).arg("horizon", x.horizon)]
    } else {
        let primary: Vec<&Comparison> = comparisons.iter().filter(|c| c.metric == "estimated satisfaction").collect();
        let winners: Vec<Phrase> = primary
            .iter()
            .filter(|c| c.p_value.is_some_and(|p| p < 0.05))
            .map(|c| {
                let better = c.arm_pct.unwrap_or(0.0) > c.control_pct.unwrap_or(0.0);
                let key = if better { Phrase::new("experiment.better") } else { Phrase::new("experiment.worse") };
                key.arg("arm", &c.arm).arg("control", &x.arm[0].name)
            })
            .collect();
        if winners.is_empty() { vec![Phrase::new("experiment.no_difference")] } else { winners }
    };
    ExperimentReport {
        name: x.name.clone(),
        description: x.description.clone(),
        description_zh: x.description_zh.clone(),
        start: x.start.to_string(),
        horizon: x.horizon,
        arms,
        comparisons,
        verdict,
    }
}

fn rate(part: f64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part * 1000.0 / whole as f64).round() / 10.0)
}

/// Two-sided p-value of the pooled two-proportion z-test of `x1/n1` against `x2/n2`.
pub fn two_proportion_p(x1: f64, n1: u64, x2: f64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return Some(1.0);
    }
    let z = ((x2 / n2) - (x1 / n1)).abs() / se;
    Some(((1.0 - normal_cdf(z)) * 2.0 * 10_000.0).round() / 10_000.0)
}

/// Φ(z) by Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_are_stable_and_balanced_within_two_percent_over_10_000_ids() {
        let x = &Experiments::builtin().all()[0];
        let warm = (0..10_000).filter(|i| x.arm_of(&format!("c-{i}")) == "warm").count();
        assert!((4_800..=5_200).contains(&warm), "{warm}");
        assert_eq!(x.arm_of("c-42"), x.arm_of("c-42"));
        let uneven = Experiments::from_toml(
            "[[experiment]]\nname = \"x\"\ndescription = \"\"\nstart = \"2026-01-01\"\nhorizon = 10\n\
             [[experiment.arm]]\nname = \"a\"\nshare = 90\n[[experiment.arm]]\nname = \"b\"\nshare = 10",
        )
        .unwrap();
        let b = (0..10_000).filter(|i| uneven.all()[0].arm_of(&format!("c-{i}")) == "b").count();
        assert!((800..=1_200).contains(&b), "{b}");
        let day = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        assert!(Experiments::builtin().arms_of("c-1", day("2026-10-31")).is_empty(), "not before its start");
        assert_eq!(Experiments::builtin().arms_of("c-1", day("2026-11-02")).len(), 1);
    }

    #[test]
    fn broken_experiment_files_are_refused() {
        let head = "[[experiment]]\nname = \"x\"\ndescription = \"\"\nstart = \"2026-01-01\"\nhorizon = 10\n";
        assert!(Experiments::from_toml(&format!("{head}[[experiment.arm]]\nname = \"a\"\nshare = 100")).is_err());
        assert!(
            Experiments::from_toml(&format!(
                "{head}[[experiment.arm]]\nname = \"a\"\nshare = 60\n[[experiment.arm]]\nname = \"b\"\nshare = 30"
            ))
            .is_err()
        );
        assert!(Experiments::from_toml(&format!("{head}colour = 1\n")).is_err());
        let arms = "[[experiment.arm]]\nname = \"a\"\nshare = 50\n[[experiment.arm]]\nname = \"b\"\nshare = 50\n";
        assert!(Experiments::from_toml(&format!("{head}{arms}{head}{arms}")).unwrap_err().contains("named twice"));
        let same = "[[experiment.arm]]\nname = \"a\"\nshare = 50\n[[experiment.arm]]\nname = \"a\"\nshare = 50\n";
        assert!(Experiments::from_toml(&format!("{head}{same}")).is_err());
    }

    #[test]
    fn the_test_matches_known_values_and_the_verdict_waits_for_the_horizon() {
        // 50/100 against 65/100: z = 2.146, p = erfc(z/√2) = 0.0319 (Python's math.erfc agrees).
        assert_eq!(two_proportion_p(50.0, 100, 65.0, 100), Some(0.0319));
        assert_eq!(two_proportion_p(50.0, 100, 52.0, 100).map(|p| p > 0.7), Some(true));
        let x = &Experiments::builtin().all()[0];
        let arm = |n: u64, satisfied: f64| {
            let mut c = ScoreCounts::default();
            c.add_counter("conversations", n as i64);
            c.add_counter("estimated", n as i64);
            c.add_counter("estimated_satisfied_milli", (satisfied * 1000.0 * n as f64) as i64);
            c
        };
        let early = compare(x, &[("control".into(), arm(120, 0.4)), ("warm".into(), arm(149, 0.7))]);
        let en = crate::i18n::Catalogue::of(crate::i18n::Locale::En);
        assert!(early.verdict_text(en).starts_with("not enough data yet (120 of 150"), "{:?}", early.verdict);
        let done = compare(x, &[("control".into(), arm(220, 0.4)), ("warm".into(), arm(210, 0.55))]);
        assert_eq!(done.verdict_text(en), "warm better than control on estimated satisfaction, 95%");
        let flat = compare(x, &[("control".into(), arm(220, 0.5)), ("warm".into(), arm(210, 0.51))]);
        let json = done.to_json(en);
        assert_eq!(json["verdict_text"], "warm better than control on estimated satisfaction, 95%");
        assert_eq!(json["verdict"][0]["key"], "experiment.better");
        assert_eq!(flat.verdict_text(en), "no difference shown at 95%");
    }
}
