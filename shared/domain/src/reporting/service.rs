//! The service's own scorecards and experiments, as staff read them: a week's rows by one
//! dimension (worst first, against the week before), and each experiment since its start.

use serde::Serialize;

use super::ReportStore;
use crate::errors::StoreError;
use crate::experiments::{ExperimentReport, Experiments, compare};
use crate::insights::scorecards::{ScoreBy, ScoreCounts, ScoreRow, scorecard};
use crate::time::IsoWeek;

/// Weeks an experiment's comparison reads at most (from its start): an experiment runs for a
/// year at the longest.
pub const EXPERIMENT_WEEKS_MAX: usize = 53;

/// `GET /scorecards`: a week's rows by one dimension, worst first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    pub week: String,
    pub by: ScoreBy,
    pub rows: Vec<ScoreRow>,
}

/// A week's scorecard by `by`: two Queries (the week and the one before), whatever the volume.
pub async fn week_scorecard(store: &impl ReportStore, week: IsoWeek, by: ScoreBy) -> Result<Scorecard, StoreError> {
    let now = store.scorecard(&week.to_string(), by).await?;
    let before = store.scorecard(&week.before(1).to_string(), by).await?;
    Ok(Scorecard { week: week.to_string(), by, rows: scorecard(&now, &before) })
}

/// Every experiment of `experiments` compared from its start week by week up to `week`, and no
/// further than the week every arm reached the horizon: a fixed horizon, so the verdict is made
/// once, on those conversations, and later weeks (or later looks) cannot change it. One Query per
/// week read.
pub async fn experiment_reports(
    store: &impl ReportStore,
    experiments: &Experiments,
    week: IsoWeek,
) -> Result<Vec<ExperimentReport>, StoreError> {
    let mut out = Vec::new();
    for x in experiments.all() {
        let mut counts: Vec<(String, ScoreCounts)> = Vec::new();
        let mut w = IsoWeek::of_date(x.start);
        for _ in 0..EXPERIMENT_WEEKS_MAX {
            if w > week {
                break;
            }
            for (key, c) in store.scorecard(&w.to_string(), ScoreBy::Arm).await? {
                let Some(arm) = key.strip_prefix(&format!("{}:", x.name)) else { continue };
                match counts.iter_mut().find(|(a, _)| a == arm) {
                    Some((_, sum)) => sum.add(&c),
                    None => counts.push((arm.to_owned(), c)),
                }
            }
            let reached = x.arm.iter().all(|a| {
                counts.iter().find(|(name, _)| *name == a.name).is_some_and(|(_, c)| c.conversations >= x.horizon)
            });
            if reached {
                break;
            }
            w = w.before(-1);
        }
        out.push(compare(x, &counts));
    }
    Ok(out)
}
