//! Text for people: `ember runs list` and `ember runs show`.
//!
//! `--format json` serializes the same [`RunSummary`] and [`RunDetails`]
//! with serde instead. Times are shown in UTC, as stored.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::{RunDetails, RunSummary, elapsed};
use crate::error::one_line;

/// Longest error shown in [`runs_table`], in characters.
pub const ERROR_WIDTH: usize = 60;

/// One aligned line per run, under a header: id, pipeline, ds, trigger,
/// state, start, duration, succeeded/total steps, and the error cut to
/// [`ERROR_WIDTH`] characters.
pub fn runs_table(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "no runs recorded\n".to_string();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.pipeline.clone(),
                r.ds.clone(),
                r.trigger.to_string(),
                r.state.to_string(),
                time(r.started_at),
                human_duration(r.duration),
                format!("{}/{}", r.steps_succeeded, r.steps_total),
                r.error
                    .as_deref()
                    .map(|e| truncate(&one_line(e), ERROR_WIDTH))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "ID", "PIPELINE", "DS", "TRIGGER", "STATE", "STARTED", "DURATION", "STEPS", "ERROR",
        ],
        &[
            Align::Right,
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Left,
        ],
        &rows,
    )
}

/// Everything about one run: a header, one line per step (state, attempts,
/// duration, rows written, error), then the artifacts.
pub fn run_report(d: &RunDetails) -> String {
    let s = &d.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} of {} for {}: {} ({})",
        s.id, s.pipeline, s.ds, s.state, s.trigger
    );
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<10} {value}");
    };
    field("pipeline", d.pipeline_path.clone());
    field("started", time(s.started_at));
    match s.ended_at {
        Some(ended) => field(
            "ended",
            format!("{} ({})", time(ended), human_duration(s.duration)),
        ),
        None => field(
            "ended",
            format!("still running ({} so far)", human_duration(s.duration)),
        ),
    }
    if let Some(at) = d.scheduled_for {
        field("scheduled", time(at));
    }
    if let Some(from) = d.resumed_from {
        field("resumes", format!("run {from}"));
    }
    if !matches!(d.params_json.trim(), "" | "{}" | "null") {
        field("params", one_line(&d.params_json));
    }
    field(
        "steps",
        format!("{}/{} succeeded", s.steps_succeeded, s.steps_total),
    );
    if let Some(error) = &s.error {
        field("error", one_line(error));
    }

    out.push('\n');
    if d.steps.is_empty() {
        out.push_str("no steps\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .steps
            .iter()
            .map(|step| {
                vec![
                    step.name.clone(),
                    step.state.to_string(),
                    step.attempts.to_string(),
                    match (step.started_at, step.ended_at) {
                        (Some(start), Some(end)) => human_duration(elapsed(start, end)),
                        _ => "-".to_string(),
                    },
                    step.rows_written
                        .map_or_else(|| "-".to_string(), |n| n.to_string()),
                    step.error.as_deref().map(one_line).unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["STEP", "STATE", "ATTEMPTS", "DURATION", "ROWS", "ERROR"],
            &[
                Align::Left,
                Align::Left,
                Align::Right,
                Align::Right,
                Align::Right,
                Align::Left,
            ],
            &rows,
        ));
    }

    out.push('\n');
    if d.artifacts.is_empty() {
        out.push_str("no artifacts\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .artifacts
            .iter()
            .map(|a| {
                vec![
                    a.step.clone(),
                    a.kind.to_string(),
                    a.name.clone(),
                    one_line(&a.value),
                ]
            })
            .collect();
        out.push_str(&table(
            &["ARTIFACT STEP", "KIND", "NAME", "VALUE"],
            &[Align::Left; 4],
            &rows,
        ));
    }
    out
}

/// A duration for people: `850ms`, `4.2s`, `1m 03s`, `2h 05m`, `3d 04h`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let secs = d.as_secs();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if secs < 60 {
        let tenths = ms / 100;
        format!("{}.{}s", tenths / 10, tenths % 10)
    } else if secs < 3_600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{}h {:02}m", secs / 3_600, secs % 3_600 / 60)
    } else {
        format!("{}d {:02}h", secs / 86_400, secs % 86_400 / 3_600)
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// `text` cut to `width` characters, the last one an ellipsis when cut.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[derive(Debug, Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Columns padded to their widest cell, two spaces apart, no trailing spaces.
fn table(header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::history::testing::{memory, new_run, steps};
    use crate::history::{ArtifactKind, RunState, StepState, Trigger};

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human_duration(Duration::from_millis(0)), "0ms");
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(4_250)), "4.2s");
        assert_eq!(human_duration(Duration::from_secs(63)), "1m 03s");
        assert_eq!(
            human_duration(Duration::from_secs(2 * 3600 + 5 * 60 + 9)),
            "2h 05m"
        );
        assert_eq!(
            human_duration(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3d 04h"
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 4), "ééé…");
    }

    #[test]
    fn runs_table_aligns_columns() {
        let (h, clock) = memory();
        let a = h
            .start_run(&new_run("churn", "2024-05-01"), &steps(&["load", "train"]))
            .unwrap();
        h.set_step_state(a, "load", StepState::Succeeded, None)
            .unwrap();
        clock.advance_ms(63_000);
        h.finish_run(
            a,
            RunState::Failed,
            Some("step 'train' failed:\n  out of memory"),
        )
        .unwrap();
        let mut scheduled = new_run("revenue_forecast", "2024-05-02");
        scheduled.trigger = Trigger::Schedule;
        h.start_run(&scheduled, &steps(&["x"])).unwrap();
        clock.advance_ms(850);

        let text = runs_table(&h.list_runs(None, 10).unwrap());
        let expected = "\
ID  PIPELINE          DS          TRIGGER   STATE    STARTED               DURATION  STEPS  ERROR
 2  revenue_forecast  2024-05-02  schedule  running  2024-05-01 00:01:03Z     850ms    0/1
 1  churn             2024-05-01  manual    failed   2024-05-01 00:00:00Z    1m 03s    1/2  step 'train' failed: out of memory
";
        assert_eq!(text, expected);
        assert_eq!(runs_table(&[]), "no runs recorded\n");
    }

    #[test]
    fn long_errors_are_cut_in_the_list() {
        let (h, _clock) = memory();
        let run = h.start_run(&new_run("p", "2024-05-01"), &[]).unwrap();
        h.finish_run(run, RunState::Failed, Some("x".repeat(200).as_str()))
            .unwrap();
        let text = runs_table(&h.list_runs(None, 1).unwrap());
        let line = text.lines().nth(1).unwrap();
        assert!(line.ends_with(&format!("{}…", "x".repeat(ERROR_WIDTH - 1))));
    }

    #[test]
    fn run_report_lists_steps_and_artifacts() {
        let (h, clock) = memory();
        let mut run = new_run("churn", "2024-05-01");
        run.params_json = r#"{"threshold": 0.5}"#.to_string();
        let id = h
            .start_run(&run, &steps(&["features", "train", "score"]))
            .unwrap();
        h.set_step_state(id, "features", StepState::Running, None)
            .unwrap();
        let n = h.start_attempt(id, "features").unwrap();
        clock.advance_ms(63_000);
        h.finish_attempt(id, "features", n, StepState::Succeeded, None, Some(120_000))
            .unwrap();
        h.set_step_state(id, "features", StepState::Succeeded, None)
            .unwrap();
        h.record_artifact(
            id,
            "features",
            ArtifactKind::FeatureParams,
            "scaler",
            "{\"mean\": 3.5}",
        )
        .unwrap();
        h.set_step_state(id, "train", StepState::Running, None)
            .unwrap();
        for _ in 0..2 {
            let n = h.start_attempt(id, "train").unwrap();
            clock.advance_ms(850);
            h.finish_attempt(
                id,
                "train",
                n,
                StepState::Failed,
                Some("out of memory"),
                None,
            )
            .unwrap();
        }
        h.set_step_state(id, "train", StepState::Failed, Some("out of memory"))
            .unwrap();
        h.set_step_state(id, "score", StepState::Skipped, None)
            .unwrap();
        h.finish_run(
            id,
            RunState::Failed,
            Some("step 'train' failed: out of memory"),
        )
        .unwrap();

        let text = run_report(&h.run(id).unwrap());
        let expected = "\
run 1 of churn for 2024-05-01: failed (manual)
  pipeline   pipelines/churn.toml
  started    2024-05-01 00:00:00Z
  ended      2024-05-01 00:01:04Z (1m 04s)
  params     {\"threshold\": 0.5}
  steps      1/3 succeeded
  error      step 'train' failed: out of memory

STEP      STATE      ATTEMPTS  DURATION    ROWS  ERROR
features  succeeded         1    1m 03s  120000
train     failed            2      1.7s       -  out of memory
score     skipped           0         -       -

ARTIFACT STEP  KIND            NAME    VALUE
features       feature_params  scaler  {\"mean\": 3.5}
";
        assert_eq!(text, expected);
    }

    #[test]
    fn run_report_of_a_running_run() {
        let (h, clock) = memory();
        let id = h.start_run(&new_run("p", "2024-05-01"), &[]).unwrap();
        clock.advance_ms(4_000);
        let text = run_report(&h.run(id).unwrap());
        assert!(text.contains("still running (4.0s so far)"), "{text}");
        assert!(text.contains("no steps\n"));
        assert!(text.ends_with("no artifacts\n"));
    }
}
