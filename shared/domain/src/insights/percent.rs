//! Percentages as the reports show them: one decimal, none of nothing.

pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `part` of `whole` in percent, one decimal; none of nothing.
pub(crate) fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round1(part as f64 * 100.0 / whole as f64))
}

/// `62.5%`, or `–` when there is nothing to divide.
pub fn opt_pct(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |p| format!("{p:.1}%"))
}
