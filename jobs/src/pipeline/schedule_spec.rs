//! When a scheduled pipeline is due: cron in a time zone, and catch-up.
//!
//! Pure functions of the schedule, the last scheduled time and "now", so the
//! rules (daylight-saving days, missed runs after downtime) are tested with
//! an injected clock instead of by sleeping.
//!
//! The logical date of a scheduled run follows Airflow: a run fired at the
//! end of an interval processes that interval, so `ds` is the local date of
//! the *previous* fire time (the 02:00 run on 23 November has
//! `ds = 2026-11-22`).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::spec::ScheduleSpec;

/// How far behind "now" a fire time may be and still count as on time.
pub const ON_TIME_GRACE: chrono::Duration = chrono::Duration::minutes(5);
/// The most missed runs made up at once with `catchup = "all"`.
pub const MAX_CATCHUP: usize = 1000;

/// Which missed runs are made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catchup {
    /// Every missed fire time, oldest first.
    All,
    /// Only the most recent fire time.
    Latest,
    /// None: only fire times that are on time run.
    None,
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct ParsedSchedule {
    cron: Cron,
    /// The zone the expression is read in.
    pub timezone: Tz,
    /// The catch-up policy.
    pub catchup: Catchup,
}

/// One run the scheduler should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRun {
    /// The fire time.
    pub scheduled_for: DateTime<Utc>,
    /// The run's logical date.
    pub ds: NaiveDate,
}

impl ParsedSchedule {
    /// Parses a `[schedule]` table; errors name the field.
    pub fn parse(spec: &ScheduleSpec) -> Result<Self, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(&spec.cron)
            .map_err(|e| format!("schedule.cron '{}': {e}", spec.cron))?;
        let timezone = match spec.timezone.as_deref() {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                format!(
                    "schedule.timezone '{name}' is not an IANA time zone (e.g. Europe/Berlin, UTC)"
                )
            })?,
        };
        let catchup = match spec.catchup.as_deref() {
            None | Some("latest") => Catchup::Latest,
            Some("all") => Catchup::All,
            Some("none") => Catchup::None,
            Some(other) => {
                return Err(format!(
                    "schedule.catchup '{other}' is not one of all, latest, none"
                ));
            }
        };
        Ok(Self {
            cron,
            timezone,
            catchup,
        })
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The logical date of the run fired at `fire`.
    pub fn ds_of(&self, fire: DateTime<Utc>) -> NaiveDate {
        let local = fire.with_timezone(&self.timezone);
        let start = self
            .cron
            .find_previous_occurrence(&local, false)
            .unwrap_or(local);
        start.date_naive()
    }

    /// The runs due at `now`, given the last fire time already run (or,
    /// for a pipeline never scheduled, the time the scheduler first saw it).
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DueRun> {
        let mut fires = Vec::new();
        let mut t = last;
        while let Some(next) = self.next_after(t) {
            if next > now {
                break;
            }
            fires.push(next);
            if fires.len() > MAX_CATCHUP {
                fires.remove(0);
            }
            t = next;
        }
        let chosen: Vec<DateTime<Utc>> = match self.catchup {
            Catchup::All => fires,
            Catchup::Latest => fires.last().copied().into_iter().collect(),
            Catchup::None => fires
                .into_iter()
                .filter(|f| now - *f <= ON_TIME_GRACE)
                .collect(),
        };
        chosen
            .into_iter()
            .map(|f| DueRun {
                scheduled_for: f,
                ds: self.ds_of(f),
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn schedule(cron: &str, tz: &str, catchup: &str) -> ParsedSchedule {
        ParsedSchedule::parse(&ScheduleSpec {
            cron: cron.to_string(),
            timezone: Some(tz.to_string()),
            catchup: Some(catchup.to_string()),
        })
        .unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_daily_run_fires_in_its_time_zone_and_processes_the_previous_day() {
        let s = schedule("0 2 * * *", "Europe/Berlin", "latest");
        // 02:00 in Berlin is 01:00 UTC in winter.
        let due = s.due(utc("2026-11-22T01:30:00Z"), utc("2026-11-23T01:00:30Z"));
        assert_eq!(
            due,
            vec![DueRun {
                scheduled_for: utc("2026-11-23T01:00:00Z"),
                ds: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
            }]
        );
        // Nothing is due a minute before.
        assert!(
            s.due(utc("2026-11-22T01:30:00Z"), utc("2026-11-23T00:59:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn daylight_saving_moves_the_utc_fire_time() {
        let s = schedule("0 2 * * *", "Europe/Berlin", "all");
        // Summer time ends at 03:00 on 25 October 2026: that day 02:00 is still
        // summer time (00:00 UTC); the next day it is winter time (01:00 UTC).
        let due = s.due(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"));
        let fires: Vec<_> = due.iter().map(|d| d.scheduled_for).collect();
        assert_eq!(
            fires,
            vec![utc("2026-10-25T00:00:00Z"), utc("2026-10-26T01:00:00Z")]
        );
        assert_eq!(due[1].ds.to_string(), "2026-10-25");
    }

    #[test]
    fn catchup_policies_after_three_days_of_downtime() {
        let last = utc("2026-11-19T02:00:00Z");
        let now = utc("2026-11-22T02:01:00Z");
        let all = schedule("0 2 * * *", "UTC", "all").due(last, now);
        let ds: Vec<String> = all.iter().map(|d| d.ds.to_string()).collect();
        assert_eq!(ds, vec!["2026-11-19", "2026-11-20", "2026-11-21"]);

        let latest = schedule("0 2 * * *", "UTC", "latest").due(last, now);
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].ds.to_string(), "2026-11-21");

        // `none` runs only the fire time that is on time (within the grace).
        let none = schedule("0 2 * * *", "UTC", "none").due(last, now);
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].scheduled_for, utc("2026-11-22T02:00:00Z"));
        let late = schedule("0 2 * * *", "UTC", "none").due(last, utc("2026-11-22T03:00:00Z"));
        assert!(late.is_empty());
    }

    #[test]
    fn bad_expressions_zones_and_policies_are_errors_naming_the_field() {
        let spec = |cron: &str, tz: &str, c: &str| ScheduleSpec {
            cron: cron.to_string(),
            timezone: Some(tz.to_string()),
            catchup: Some(c.to_string()),
        };
        let e = ParsedSchedule::parse(&spec("0 25 * * *", "UTC", "all")).unwrap_err();
        assert!(e.contains("schedule.cron '0 25 * * *'"), "{e}");
        let e = ParsedSchedule::parse(&spec("0 2 * * *", "Mars/Olympus", "all")).unwrap_err();
        assert!(e.contains("schedule.timezone 'Mars/Olympus'"), "{e}");
        let e = ParsedSchedule::parse(&spec("0 2 * * *", "UTC", "some")).unwrap_err();
        assert!(e.contains("schedule.catchup 'some'"), "{e}");
    }
}
