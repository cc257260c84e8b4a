//! A reader of the Prometheus text exposition format, for what
//! `PrometheusHandle::render` writes: the samples, without their `# HELP` and
//! `# TYPE` comments.
//!
//! Written by hand rather than with the `prometheus-parse` crate: that crate
//! splits a sample's labels on every `,` and `=` and leaves `\"`, `\\` and
//! `\n` escaped, so a label value holding any of them is cut or mangled, and
//! cacheback's `job` label is a Rust path that may hold commas (a generic
//! job's `Job<A, B>`, a function's `type_name`). Its regexes also pull in
//! `regex` and `itertools` for the forty lines below.
//!
//! ```text
//! # TYPE cacheback_lookups_total counter
//! cacheback_lookups_total{job="sandbox::jobs::KeyedJob",alias="default",status="hit"} 3
//! cacheback_refresh_duration_seconds{job="j",mode="sync",quantile="0.5"} 0.0021
//! ```

use std::fmt;

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name, with its `_sum`/`_count`/`_bucket` suffix if any.
    pub name: String,
    /// The labels, in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value (`NaN`, `+Inf` and `-Inf` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A line that does not read as a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub message: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Every sample of `text`, in order. Blank lines and `#` comments are skipped.
///
/// # Errors
///
/// The first line that is not a sample.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples.push(sample(line).map_err(|message| ParseError { line: index + 1, message })?);
    }
    Ok(samples)
}

fn sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err("a sample starts with a metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("a label has no `=`")?;
            let key = rest[..eq].trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err("a label has no name");
            }
            let (value, after) = quoted(rest[eq + 1..].trim_start())?;
            labels.push((key.to_owned(), value));
            rest = after.trim_start();
            // `,` between labels (and allowed before `}`), or `}`.
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err("the labels are not closed by `}`");
            }
        }
    }
    let value = rest.split_whitespace().next().ok_or("a sample has no value")?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().map_err(|_| "a sample's value is not a number")?,
    };
    Ok(Sample { name: name.to_owned(), labels, value })
}

/// The unescaped string at the start of `text` (which starts with `"`), and what follows it.
fn quoted(text: &str) -> Result<(String, &str), &'static str> {
    let body = text.strip_prefix('"').ok_or("a label value is not quoted")?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("a label value is not closed")
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn reads_what_the_exporter_renders() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let tricky = r#"app::Job<a, b="c">\path"#;
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!("cacheback_lookups_total", "Cache lookups, by status.");
            metrics::counter!("cacheback_lookups_total", "job" => "sandbox::jobs::KeyedJob", "status" => "hit")
                .increment(3);
            metrics::counter!("cacheback_lookups_total", "job" => tricky, "status" => "miss").increment(1);
            let histogram =
                metrics::histogram!("cacheback_refresh_duration_seconds", "job" => "j", "mode" => "sync");
            histogram.record(0.25);
            histogram.record(0.5);
        });
        let text = handle.render();
        let samples = parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));

        let hit = samples.iter().find(|s| s.label("status") == Some("hit")).unwrap();
        assert_eq!(hit.name, "cacheback_lookups_total");
        assert_eq!(hit.labels, labels(&[("job", "sandbox::jobs::KeyedJob"), ("status", "hit")]));
        assert_eq!(hit.value, 3.0);
        let miss = samples.iter().find(|s| s.label("status") == Some("miss")).unwrap();
        assert_eq!(miss.label("job"), Some(tricky), "{text}");

        // Histograms render as summaries: quantiles, `_sum` and `_count`.
        let quantile = |q: &str| {
            samples
                .iter()
                .find(|s| s.name == "cacheback_refresh_duration_seconds" && s.label("quantile") == Some(q))
                .unwrap_or_else(|| panic!("no quantile {q} in\n{text}"))
        };
        assert_eq!(quantile("0.5").label("mode"), Some("sync"));
        assert!((0.2..=0.55).contains(&quantile("0.99").value), "{text}");
        let count = samples.iter().find(|s| s.name == "cacheback_refresh_duration_seconds_count").unwrap();
        assert_eq!(count.value, 2.0);
        let sum = samples.iter().find(|s| s.name == "cacheback_refresh_duration_seconds_sum").unwrap();
        assert_eq!(sum.value, 0.75);
    }

    #[test]
    fn reads_the_format_by_hand() {
        let text = "# HELP x_total Things.\n# TYPE x_total counter\n\nx_total 7\n\
                    y{a=\"1\", b=\"two words\",} 2.5 1700000000000\n\
                    z{q=\"line\\nbreak\",e=\"\"} +Inf\nw{} NaN\nv -Inf\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[0], Sample { name: "x_total".into(), labels: vec![], value: 7.0 });
        assert_eq!(samples[1].labels, labels(&[("a", "1"), ("b", "two words")]));
        assert_eq!(samples[1].value, 2.5);
        assert_eq!(samples[2].labels, labels(&[("q", "line\nbreak"), ("e", "")]));
        assert_eq!(samples[2].value, f64::INFINITY);
        assert!(samples[3].value.is_nan() && samples[3].labels.is_empty());
        assert_eq!(samples[4].value, f64::NEG_INFINITY);
    }

    #[test]
    fn refuses_what_is_not_a_sample() {
        for (text, message) in [
            ("x{a=\"1\" 2", "the labels are not closed by `}`"),
            ("x{a=\"1} 2", "a label value is not closed"),
            ("x{a=1} 2", "a label value is not quoted"),
            ("x{a} 2", "a label has no `=`"),
            ("x{=\"1\"} 2", "a label has no name"),
            ("x{a=\"1\"}", "a sample has no value"),
            ("x one", "a sample's value is not a number"),
            ("{a=\"1\"} 1", "a sample starts with a metric name"),
        ] {
            assert_eq!(parse(&format!("ok 1\n{text}\n")), Err(ParseError { line: 2, message }), "{text}");
        }
    }
}
