//! The service's own scorecards and experiments, as staff read them: a week's rows by one
//! dimension (worst first, against the week before), and each experiment since its start.

use serde::Serialize;

use super::ReportStore;
use crate::errors::StoreError;
use crate::experiments::{ExperimentReport, Experiments, compare};
use crate::insights::scorecards::{ScoreBy, ScoreCounts, ScoreRow, scorecard};
use crate::time::IsoWeek;

/// Weeks an experiment's comparison reads at most (from its start).
pub const EXPERIMENT_WEEKS_MAX: i64 = 26;

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

/// Every experiment of `experiments` compared from its start to `week` (one Query per week, at
/// most `EXPERIMENT_WEEKS_MAX`).
pub async fn experiment_reports(
    store: &impl ReportStore,
    experiments: &Experiments,
    week: IsoWeek,
) -> Result<Vec<ExperimentReport>, StoreError> {
    let mut out = Vec::new();
    for x in experiments.all() {
        let first = IsoWeek::of_date(x.start);
        let mut counts: Vec<(String, ScoreCounts)> = Vec::new();
        let mut w = week;
        for _ in 0..EXPERIMENT_WEEKS_MAX {
            if w < first {
                break;
            }
            for (key, c) in store.scorecard(&w.to_string(), ScoreBy::Arm).await? {
                let Some(arm) = key.strip_prefix(&format!("{}:", x.name)) else { continue };
                match counts.iter_mut().find(|(a, _)| a == arm) {
                    Some((_, sum)) => sum.add(&c),
                    None => counts.push((arm.to_owned(), c)),
                }
            }
            w = w.before(1);
        }
        out.push(compare(x, &counts));
    }
    Ok(out)
}
