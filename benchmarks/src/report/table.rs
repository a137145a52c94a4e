//! The Markdown table of a TPC-H report: per query, every engine's best
//! time, how many times faster Ember is than Spark and how far it is from
//! DataFusion; totals, geometric means, the targets met or missed, and the
//! queries that miss them.

use std::fmt::Write;

use super::{EngineReport, TpchReport};

/// A ratio the project aims for: `slower` engine's time over `faster`'s.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The engine expected to be slower (its time is the numerator).
    pub slower: &'static str,
    /// The engine expected to be faster.
    pub faster: &'static str,
    /// The ratio to reach: at least this (`at_most` false) or at most this.
    pub ratio: f64,
    /// Whether the ratio is a ceiling (Ember within 1.2x of DataFusion).
    pub at_most: bool,
    /// In words.
    pub text: &'static str,
}

impl Target {
    fn met(&self, ratio: f64) -> bool {
        if self.at_most {
            ratio <= self.ratio
        } else {
            ratio >= self.ratio
        }
    }
}

/// The targets of the benchmark issue, compared on totals (sum of best runs).
pub const TARGETS: [Target; 3] = [
    Target {
        slower: "spark",
        faster: "embedded",
        ratio: 15.0,
        at_most: false,
        text: "Ember embedded at least 15x faster than Spark",
    },
    Target {
        slower: "embedded",
        faster: "datafusion",
        ratio: 1.2,
        at_most: true,
        text: "Ember embedded within 1.2x of single-process DataFusion",
    },
    Target {
        slower: "spark",
        faster: "cluster",
        ratio: 10.0,
        at_most: false,
        text: "Ember on a local cluster at least 10x faster than Spark",
    },
];

/// How engines are named in tables and charts.
pub fn display_name(engine: &str) -> String {
    match engine {
        "datafusion" => "DataFusion".to_string(),
        "embedded" => "Ember embedded".to_string(),
        "cluster" => "Ember cluster".to_string(),
        "spark" => "Spark".to_string(),
        other => other.to_string(),
    }
}

/// Ratio columns: (slower, faster) pairs present in the report.
fn ratio_columns(report: &TpchReport) -> Vec<(&'static str, &'static str)> {
    let present = |name: &str| report.engine(name).is_some();
    let mut columns = Vec::new();
    for ember in ["embedded", "cluster"] {
        if present(ember) && present("spark") {
            columns.push(("spark", ember));
        }
    }
    for ember in ["embedded", "cluster"] {
        if present(ember) && present("datafusion") {
            columns.push((ember, "datafusion"));
        }
    }
    columns
}

fn best(engine: &EngineReport, n: usize) -> Option<f64> {
    engine.query(n).map(|q| q.best_s)
}

fn ratio(report: &TpchReport, slower: &str, faster: &str, n: usize) -> Option<f64> {
    let s = best(report.engine(slower)?, n)?;
    let f = best(report.engine(faster)?, n)?;
    (f > 0.0).then_some(s / f)
}

/// Ratio of the totals over the queries both engines ran.
pub fn total_ratio(report: &TpchReport, slower: &str, faster: &str) -> Option<f64> {
    let (s, f) = (report.engine(slower)?, report.engine(faster)?);
    let common: Vec<usize> = report
        .query_numbers()
        .into_iter()
        .filter(|n| s.query(*n).is_some() && f.query(*n).is_some())
        .collect();
    let total = |e: &EngineReport| common.iter().filter_map(|n| best(e, *n)).sum::<f64>();
    let denominator = total(f);
    (!common.is_empty() && denominator > 0.0).then(|| total(s) / denominator)
}

/// Geometric mean of the per-query ratios.
pub fn geometric_mean_ratio(report: &TpchReport, slower: &str, faster: &str) -> Option<f64> {
    let logs: Vec<f64> = report
        .query_numbers()
        .into_iter()
        .filter_map(|n| ratio(report, slower, faster, n))
        .filter(|r| *r > 0.0)
        .map(f64::ln)
        .collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

fn ratio_header(slower: &str, faster: &str) -> String {
    format!("{} / {}", display_name(slower), display_name(faster))
}

fn verified_cell(report: &TpchReport, n: usize) -> String {
    let failed: Vec<String> = report
        .engines
        .iter()
        .filter(|e| e.query(n).and_then(|q| q.verified) == Some(false))
        .map(|e| display_name(&e.engine))
        .collect();
    let checked = report
        .engines
        .iter()
        .any(|e| e.query(n).and_then(|q| q.verified).is_some());
    match (checked, failed.is_empty()) {
        (false, _) => "-".to_string(),
        (true, true) => "yes".to_string(),
        (true, false) => format!("**no: {}**", failed.join(", ")),
    }
}

/// The report as a Markdown document.
pub fn markdown_table(report: &TpchReport) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# TPC-H SF{}: {}\n",
        report.scale_factor,
        report
            .engines
            .iter()
            .map(|e| display_name(&e.engine))
            .collect::<Vec<_>>()
            .join(" vs ")
    );
    let _ = writeln!(
        md,
        "Host `{}`, {} cores; {} partitions; best of {} runs per query, engines taking turns run by run. \
         Times in seconds, from submitting the SQL to holding every row of the answer.\n",
        report.host, report.cores, report.partitions, report.runs
    );
    for e in &report.engines {
        if let Some(detail) = &e.detail {
            let _ = writeln!(md, "- {}: {detail}", display_name(&e.engine));
        }
    }
    let columns = ratio_columns(report);
    let mut header = vec!["Query".to_string()];
    header.extend(
        report
            .engines
            .iter()
            .map(|e| format!("{} (s)", display_name(&e.engine))),
    );
    header.extend(columns.iter().map(|(s, f)| ratio_header(s, f)));
    header.push("Answers verified".to_string());
    let _ = writeln!(md, "\n| {} |", header.join(" | "));
    let _ = writeln!(
        md,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { " --- |" } else { " ---: |" })
            .collect::<String>()
    );
    for n in report.query_numbers() {
        let mut row = vec![format!("Q{n}")];
        row.extend(report.engines.iter().map(|e| match best(e, n) {
            Some(s) => format!("{s:.3}"),
            None => "-".to_string(),
        }));
        row.extend(columns.iter().map(|(s, f)| match ratio(report, s, f, n) {
            Some(r) => format!("{r:.2}x"),
            None => "-".to_string(),
        }));
        row.push(verified_cell(report, n));
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    let mut total = vec!["**Total**".to_string()];
    total.extend(
        report
            .engines
            .iter()
            .map(|e| format!("**{:.3}**", e.total_best_s())),
    );
    total.extend(
        columns
            .iter()
            .map(|(s, f)| match total_ratio(report, s, f) {
                Some(r) => format!("**{r:.2}x**"),
                None => "-".to_string(),
            }),
    );
    total.push(String::new());
    let _ = writeln!(md, "| {} |", total.join(" | "));
    let mut geo = vec!["Geometric mean of ratios".to_string()];
    geo.extend(report.engines.iter().map(|_| String::new()));
    geo.extend(
        columns
            .iter()
            .map(|(s, f)| match geometric_mean_ratio(report, s, f) {
                Some(r) => format!("{r:.2}x"),
                None => "-".to_string(),
            }),
    );
    geo.push(String::new());
    let _ = writeln!(md, "| {} |", geo.join(" | "));
    write_targets(&mut md, report);
    md
}

fn write_targets(md: &mut String, report: &TpchReport) {
    let applicable: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| report.engine(t.slower).is_some() && report.engine(t.faster).is_some())
        .collect();
    if applicable.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Targets (totals)\n");
    for t in &applicable {
        let Some(r) = total_ratio(report, t.slower, t.faster) else {
            continue;
        };
        let bound = if t.at_most { "at most" } else { "at least" };
        let _ = writeln!(
            md,
            "- {}: {} / {} = {r:.2}x ({bound} {:.1}x): **{}**",
            t.text,
            display_name(t.slower),
            display_name(t.faster),
            t.ratio,
            if t.met(r) { "met" } else { "missed" }
        );
    }
    for t in &applicable {
        let mut short: Vec<(usize, f64)> = report
            .query_numbers()
            .into_iter()
            .filter_map(|n| ratio(report, t.slower, t.faster, n).map(|r| (n, r)))
            .filter(|(_, r)| !t.met(*r))
            .collect();
        if short.is_empty() {
            continue;
        }
        short.sort_by(|a, b| {
            if t.at_most {
                b.1.total_cmp(&a.1)
            } else {
                a.1.total_cmp(&b.1)
            }
        });
        let _ = writeln!(
            md,
            "\nQueries short of \"{}\", furthest first: {}",
            t.text,
            short
                .iter()
                .map(|(n, r)| format!("Q{n} {r:.2}x"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EngineReport, QueryReport};

    fn engine(name: &str, times: &[f64]) -> EngineReport {
        let mut e = EngineReport::new(name.to_string());
        for (i, t) in times.iter().enumerate() {
            e.queries
                .push(QueryReport::new(i + 1, vec![*t, t * 2.0], 1, Some(true)));
        }
        e
    }

    #[test]
    fn ratios_totals_and_targets() {
        let report = TpchReport::new(
            1.0,
            2,
            2,
            vec![
                engine("spark", &[10.0, 40.0]),
                engine("datafusion", &[1.0, 1.0]),
                engine("embedded", &[1.0, 4.0]),
            ],
        );
        assert_eq!(total_ratio(&report, "spark", "embedded"), Some(10.0));
        assert!((geometric_mean_ratio(&report, "spark", "embedded").unwrap() - 10.0).abs() < 1e-12);
        assert_eq!(total_ratio(&report, "embedded", "datafusion"), Some(2.5));
        let md = markdown_table(&report);
        assert!(
            md.contains("| Q1 | 10.000 | 1.000 | 1.000 | 10.00x | 1.00x | yes |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| **Total** | **50.000** | **2.000** | **5.000** | **10.00x** | **2.50x** |  |"
            ),
            "{md}"
        );
        assert!(
            md.contains("Spark / Ember embedded = 10.00x (at least 15.0x): **missed**"),
            "{md}"
        );
        assert!(
            md.contains("within 1.2x of single-process DataFusion\", furthest first: Q2 4.00x"),
            "{md}"
        );
        // No cluster engine: no cluster target.
        assert!(!md.contains("local cluster"), "{md}");
    }
}
