//! Observability: business metrics as CloudWatch Embedded Metric Format lines (one stdout line,
//! no API call, no extra latency). Structured logs come from `tracing` (see `crate::http`).

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "FeedbackLoop";

/// One EMF record: metrics (name, value, unit) under the given dimensions.
pub fn emf_line(timestamp_ms: i64, dimensions: &[(&str, &str)], metrics: &[(&str, f64, &str)]) -> String {
    let mut root = Map::new();
    let dim_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let defs: Vec<Value> = metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect();
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dim_names], "Metrics": defs}]}),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), json!(v));
    }
    for (name, value, _) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

pub fn emit_metrics(dimensions: &[(&str, &str)], metrics: &[(&str, f64, &str)]) {
    let now = jiff::Timestamp::now().as_millisecond();
    println!("{}", emf_line(now, dimensions, metrics));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_declare_what_they_carry() {
        let line =
            emf_line(1, &[("Function", "submit-rating")], &[("RatingSubmitted", 1.0, "Count"), ("Stars", 4.0, "None")]);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Function");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Name"], "Stars");
        assert_eq!(v["Stars"], 4.0);
        assert_eq!(v["Function"], "submit-rating");
    }
}
