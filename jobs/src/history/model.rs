//! The rows of the run history, and how their values are stored as text.
//!
//! Every enum is stored as the lower-case text of [`as_str`](RunState::as_str)
//! (the same text `--format json` prints), and every timestamp as RFC 3339 UTC
//! text with millisecond precision (`2024-05-01T02:00:00.000Z`), which sorts
//! lexically in time order. Text the enums do not know is reported as
//! [`HistoryError::Corrupt`], never a panic.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::error::{HistoryError, Result};

/// Id of one run of a pipeline; increases with every run recorded in a file.
pub type RunId = i64;

/// Declares a fieldless enum together with its stored text, kept in one place
/// so that `as_str`, `parse` and the serde names cannot drift apart.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown to people.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value whose [`as_str`](Self::as_str) is `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Why a run was started.
    Trigger {
        /// `ember pipeline run` by a person.
        Manual => "manual",
        /// The scheduler, for the interval ending at `scheduled_for`.
        Schedule => "schedule",
        /// A backfill over past dates.
        Backfill => "backfill",
        /// A re-run of the unfinished steps of an earlier run (`resumed_from`).
        Resume => "resume",
    }
}

text_enum! {
    /// Where a run is, or how it ended.
    RunState {
        /// Started and not finished (or its process died unnoticed so far).
        Running => "running",
        /// Every step succeeded or was skipped.
        Succeeded => "succeeded",
        /// A step failed.
        Failed => "failed",
        /// The run exceeded its time limit.
        TimedOut => "timed_out",
        /// Found `running` by a later process while the process that ran it
        /// was gone: it was killed or crashed without recording an end.
        Killed => "killed",
    }
}

text_enum! {
    /// Where a step (or one attempt of it) is, or how it ended.
    StepState {
        /// Not started yet.
        Pending => "pending",
        /// Started and not finished.
        Running => "running",
        /// Finished successfully.
        Succeeded => "succeeded",
        /// Finished with an error (after its last attempt, for a step).
        Failed => "failed",
        /// Exceeded its time limit.
        TimedOut => "timed_out",
        /// Not run: already done by the run this one resumes, or an upstream
        /// step failed.
        Skipped => "skipped",
    }
}

text_enum! {
    /// What a recorded artifact is.
    ArtifactKind {
        /// A table or file the step wrote; the value is its path.
        Output => "output",
        /// A trained model; the value is its path.
        Model => "model",
        /// Fitted feature parameters (scalers, encoders); the value is JSON.
        FeatureParams => "feature_params",
        /// Evaluation metrics; the value is JSON.
        Metrics => "metrics",
    }
}

impl RunState {
    /// Whether the run has ended (every state but `running`).
    pub fn is_terminal(self) -> bool {
        self != RunState::Running
    }
}

impl StepState {
    /// Whether the step (or attempt) has ended: not `pending` nor `running`.
    pub fn is_terminal(self) -> bool {
        !matches!(self, StepState::Pending | StepState::Running)
    }
}

/// What [`History::start_run`](super::History::start_run) records about a new run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewRun {
    /// The pipeline's name.
    pub pipeline: String,
    /// The pipeline spec file the run was started from.
    pub pipeline_path: String,
    /// The logical date the run processes, `YYYY-MM-DD`.
    pub ds: String,
    /// Why the run was started.
    pub trigger: Trigger,
    /// The run this one resumes, for [`Trigger::Resume`].
    pub resumed_from: Option<RunId>,
    /// The schedule tick this run is for, for [`Trigger::Schedule`].
    #[serde(serialize_with = "rfc3339::option")]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The run's parameters, as a JSON document.
    pub params_json: String,
}

/// One line of `ember runs list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's id.
    pub id: RunId,
    /// The pipeline's name.
    pub pipeline: String,
    /// The logical date, `YYYY-MM-DD`.
    pub ds: String,
    /// Why the run was started.
    pub trigger: Trigger,
    /// Where the run is, or how it ended.
    pub state: RunState,
    /// When the run started.
    #[serde(serialize_with = "rfc3339::required")]
    pub started_at: DateTime<Utc>,
    /// When the run ended; `None` while running.
    #[serde(serialize_with = "rfc3339::option")]
    pub ended_at: Option<DateTime<Utc>>,
    /// `ended_at - started_at`, or the time so far (by the history's clock)
    /// for a run still running. Serialized as `duration_ms`.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// How many steps succeeded.
    pub steps_succeeded: u32,
    /// How many steps the run has.
    pub steps_total: u32,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// Everything recorded about one run: `ember runs show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetails {
    /// The summary line.
    pub summary: RunSummary,
    /// The pipeline spec file the run was started from.
    pub pipeline_path: String,
    /// The run's parameters, as a JSON document.
    pub params_json: String,
    /// The run this one resumes.
    pub resumed_from: Option<RunId>,
    /// The schedule tick this run is for.
    #[serde(serialize_with = "rfc3339::option")]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The steps, in declaration order.
    pub steps: Vec<StepRecord>,
    /// Every attempt, by step (declaration order) then attempt number.
    pub attempts: Vec<AttemptRecord>,
    /// Every artifact, in the order recorded.
    pub artifacts: Vec<ArtifactRecord>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// The step's name, unique in its pipeline.
    pub name: String,
    /// Where the step is, or how it ended.
    pub state: StepState,
    /// How many attempts were started.
    pub attempts: u32,
    /// When the step first became `running`.
    #[serde(serialize_with = "rfc3339::option")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the step reached its final state.
    #[serde(serialize_with = "rfc3339::option")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Rows written by its last succeeded attempt, if it reported any.
    pub rows_written: Option<u64>,
    /// Why the step failed, if it did.
    pub error: Option<String>,
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// The step's name.
    pub step: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// Where the attempt is, or how it ended.
    pub state: StepState,
    /// When the attempt started.
    #[serde(serialize_with = "rfc3339::required")]
    pub started_at: DateTime<Utc>,
    /// When the attempt ended.
    #[serde(serialize_with = "rfc3339::option")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Rows the attempt wrote, if it reported any.
    pub rows_written: Option<u64>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
}

/// Something a step produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactRecord {
    /// The step that produced it.
    pub step: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Its name within the step.
    pub name: String,
    /// A path, or a JSON document (fitted feature parameters, metrics).
    pub value: String,
    /// When it was recorded.
    #[serde(serialize_with = "rfc3339::required")]
    pub recorded_at: DateTime<Utc>,
}

/// Timestamp as stored: RFC 3339, UTC, milliseconds, `Z` suffix.
pub(crate) fn encode_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a stored timestamp of `table.column`.
pub(crate) fn decode_time(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| HistoryError::corrupt(table, column, text))
}

/// Parses an optional stored timestamp of `table.column`.
pub(crate) fn decode_opt_time(
    table: &'static str,
    column: &'static str,
    text: Option<&str>,
) -> Result<Option<DateTime<Utc>>> {
    text.map(|t| decode_time(table, column, t)).transpose()
}

/// Parses stored enum text of `table.column` with `parse`.
pub(crate) fn decode_enum<T>(
    table: &'static str,
    column: &'static str,
    text: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T> {
    parse(text).ok_or_else(|| HistoryError::corrupt(table, column, text))
}

/// A stored count or row count, which is never negative.
pub(crate) fn decode_count<T: TryFrom<i64>>(
    table: &'static str,
    column: &'static str,
    value: i64,
) -> Result<T> {
    T::try_from(value).map_err(|_| HistoryError::corrupt(table, column, value.to_string()))
}

/// `end - start`, clamped at zero when clocks disagree.
pub(crate) fn elapsed(start: DateTime<Utc>, end: DateTime<Utc>) -> Duration {
    (end - start).to_std().unwrap_or(Duration::ZERO)
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Timestamps serialize as their stored text, independent of chrono's
/// optional `serde` feature.
mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub(super) fn required<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode_time(*t))
    }

    pub(super) fn option<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::encode_time(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn enum_text_round_trips() {
        for t in Trigger::ALL {
            assert_eq!(Trigger::parse(t.as_str()), Some(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for s in RunState::ALL {
            assert_eq!(RunState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in StepState::ALL {
            assert_eq!(StepState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for k in ArtifactKind::ALL {
            assert_eq!(ArtifactKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(StepState::TimedOut.as_str(), "timed_out");
        assert_eq!(ArtifactKind::FeatureParams.to_string(), "feature_params");
        assert_eq!(RunState::parse("Running"), None);
    }

    #[test]
    fn time_is_stored_with_milliseconds_in_utc() {
        let t = Utc.with_ymd_and_hms(2024, 5, 1, 2, 3, 4).unwrap()
            + chrono::Duration::microseconds(5_678);
        let text = encode_time(t);
        assert_eq!(text, "2024-05-01T02:03:04.005Z");
        let back = decode_time("runs", "started_at", &text).unwrap();
        assert_eq!(back, t - chrono::Duration::microseconds(678));
        assert!(matches!(
            decode_time("runs", "started_at", "yesterday"),
            Err(HistoryError::Corrupt { table: "runs", column: "started_at", value }) if value == "yesterday"
        ));
    }

    #[test]
    fn summary_serializes_times_as_text_and_duration_as_millis() {
        let start = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
        let s = RunSummary {
            id: 7,
            pipeline: "churn".into(),
            ds: "2024-05-01".into(),
            trigger: Trigger::Schedule,
            state: RunState::TimedOut,
            started_at: start,
            ended_at: None,
            duration: Duration::from_millis(1500),
            steps_succeeded: 1,
            steps_total: 2,
            error: None,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["started_at"], "2024-05-01T00:00:00.000Z");
        assert_eq!(json["ended_at"], serde_json::Value::Null);
        assert_eq!(json["duration_ms"], 1500);
        assert_eq!(json["state"], "timed_out");
        assert_eq!(json["trigger"], "schedule");
    }
}
