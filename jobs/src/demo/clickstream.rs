//! Client telemetry of the churn data set: one newline-delimited JSON file
//! per month, as messy as a real mobile and web SDK's, but with one JSON
//! type per top-level key so that Arrow's schema inference reads it.
//!
//! A line looks like this (one line in the file):
//!
//! ```json
//! {"event_id":"5f0c…","ts":"2026-10-05T19:03:27.512Z","type":"hover","session_id":"s-9a1f…",
//!  "user":{"customer_id":123,"device":{"os":"ios","app_version":"5.2.1"}},
//!  "props":"{\"element\":\"cancel_link\",\"duration_ms\":850}"}
//! ```
//!
//! * `event_id`, `ts` (RFC 3339, UTC), `type` and `session_id` are on every
//!   line. `type` is one of `session_start`, `page_view`, `hover`, `click`,
//!   `support_call`, `session_end`; a session's events share its
//!   `session_id` and come seconds to minutes apart, from `session_start` to
//!   `session_end`.
//! * The customer is in `user.customer_id`, except on the ~10% of lines sent
//!   by the legacy client, which have a top-level `userId` instead and no
//!   `user` object (and timestamps without milliseconds, and differently
//!   shaped event ids).
//! * `props` is a string holding a JSON object whose keys depend on `type`:
//!   `session_start` `{"entry"}`, `page_view` `{"page","load_ms"}`, `hover`
//!   `{"element","duration_ms"}` with `element` one of `subscribe_button`,
//!   `cancel_link`, `upgrade_banner`, `click` `{"element"}`, `support_call`
//!   `{"reason","wait_s","channel"}` with `reason` one of `billing`, `bug`,
//!   `cancel_request`, `session_end` `{"duration_s"}`. Extras appear too:
//!   `x_exp` (`{"bucket":"A"}`) for customers in an experiment, `sdk` from
//!   the legacy client, and `duration_ms` sent as a string (`"850"`) by the
//!   legacy client and now and then by the others.
//! * About 0.5% of events are sent twice (a retry: same `event_id`).
//! * A file holds the sessions that *started* in its month, sorted by time;
//!   a session running past midnight at the end of a month spills a few
//!   events into the next month's dates.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand::rngs::StdRng;

use super::random::{between, chance, exponential, normal, pick, poisson, stream_rng};
use super::subscriptions::{Customer, Mood, add_days};
use crate::error::{JobsError, Result};

/// Random stream of a customer's devices and habits.
const HABITS_STREAM: u64 = 2;
/// Random streams of a customer's sessions: this plus the month's number.
const SESSIONS_STREAM: u64 = 1 << 32;

const MS_PER_DAY: i64 = 86_400_000;

/// Sessions started per hour of the day (UTC), relative.
const HOURS: [(i64, f64); 24] = [
    (0, 2.0),
    (1, 1.2),
    (2, 0.6),
    (3, 0.4),
    (4, 0.3),
    (5, 0.4),
    (6, 0.8),
    (7, 1.5),
    (8, 2.0),
    (9, 2.0),
    (10, 2.0),
    (11, 2.2),
    (12, 2.8),
    (13, 2.5),
    (14, 2.2),
    (15, 2.3),
    (16, 2.6),
    (17, 3.2),
    (18, 4.0),
    (19, 4.8),
    (20, 5.2),
    (21, 4.6),
    (22, 3.6),
    (23, 2.6),
];

/// How one customer uses the app, whatever their mood.
#[derive(Debug, Clone)]
struct Habits {
    weekly_sessions: f64,
    os: &'static str,
    app_version: &'static str,
    legacy_share: f64,
    experiment_bucket: Option<&'static str>,
}

impl Habits {
    fn new(seed: u64, customer: &Customer) -> Self {
        let mut rng = stream_rng(seed, HABITS_STREAM, customer.id as u64);
        // Engaged customers stay: the propensity to leave lowers usage.
        let weekly_sessions = 1.1 * (0.5 * normal(&mut rng) - 0.5 * customer.propensity).exp();
        let os = *pick(&mut rng, &[("ios", 0.4), ("android", 0.4), ("web", 0.2)]);
        let app_version = match os {
            "ios" => *pick(
                &mut rng,
                &[("5.3.0", 0.5), ("5.2.1", 0.35), ("5.1.4", 0.15)],
            ),
            "android" => *pick(
                &mut rng,
                &[("5.3.1", 0.45), ("5.2.0", 0.35), ("4.9.8", 0.2)],
            ),
            _ => "web-2026.10",
        };
        let legacy_share = if chance(&mut rng, 0.25) { 0.4 } else { 0.0 };
        let experiment_bucket =
            chance(&mut rng, 0.3).then(|| *pick(&mut rng, &[("A", 1.0), ("B", 1.0)]));
        Self {
            weekly_sessions,
            os,
            app_version,
            legacy_share,
            experiment_bucket,
        }
    }
}

/// One file of the clickstream: the sessions started on days `from..until`.
#[derive(Debug, Clone)]
pub(crate) struct MonthFile {
    pub(crate) from: NaiveDate,
    pub(crate) until: NaiveDate,
    pub(crate) path: PathBuf,
}

/// The telemetry of a set of customers, written a month at a time.
pub(crate) struct Clickstream<'a> {
    seed: u64,
    customers: &'a [Customer],
    habits: Vec<Habits>,
}

impl<'a> Clickstream<'a> {
    pub(crate) fn new(seed: u64, customers: &'a [Customer]) -> Self {
        let habits = customers.iter().map(|c| Habits::new(seed, c)).collect();
        Self {
            seed,
            customers,
            habits,
        }
    }

    /// Writes `files`, several at once (one thread per core), and returns
    /// the number of lines written. File `i` draws from random streams of
    /// its own, so the output does not depend on the threads.
    pub(crate) fn write_files(&self, files: &[MonthFile]) -> Result<usize> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, files.len().max(1));
        let next = AtomicUsize::new(0);
        let mut written: Vec<(usize, Result<usize>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut written = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(file) = files.get(i) else {
                                return written;
                            };
                            written.push((i, self.write_file(i as u64, file)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        // The first failure in file order is the one reported.
        written.sort_by_key(|(i, _)| *i);
        written.into_iter().map(|(_, lines)| lines).sum()
    }

    /// Writes one file, number `index` of the history.
    fn write_file(&self, index: u64, file: &MonthFile) -> Result<usize> {
        let path = &file.path;
        let mut events = Vec::new();
        for (customer, habits) in self.customers.iter().zip(&self.habits) {
            if !customer.has_service_during(file.from, file.until) {
                continue;
            }
            let mut rng = stream_rng(self.seed, SESSIONS_STREAM + index, customer.id as u64);
            let mut day = file.from;
            while day < file.until {
                if let Some(mood) = customer.mood_on(day) {
                    let rate = habits.weekly_sessions / 7.0 * session_rate(mood);
                    for _ in 0..poisson(&mut rng, rate) {
                        let mut session = Session::new(&mut rng, customer, habits, mood, day);
                        session.play(&mut rng, &mut events);
                    }
                }
                day = add_days(day, 1);
            }
        }
        events.sort_unstable();
        let file = std::fs::File::create(path).map_err(|e| JobsError::io(path, e))?;
        let mut out = std::io::BufWriter::new(file);
        for (_, line) in &events {
            out.write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| JobsError::io(path, e))?;
        }
        out.flush().map_err(|e| JobsError::io(path, e))?;
        Ok(events.len())
    }
}

/// Relative session rate in each mood.
fn session_rate(mood: Mood) -> f64 {
    match mood {
        Mood::Content => 1.0,
        Mood::PaymentTrouble => 0.9,
        Mood::Wobbling => 0.6,
        Mood::Leaving => 0.5,
        Mood::Gone => 0.2,
    }
}

/// One session being played out, event by event.
struct Session<'a> {
    customer: &'a Customer,
    habits: &'a Habits,
    mood: Mood,
    legacy: bool,
    session_id: String,
    day: NaiveDate,
    /// Milliseconds since the start of `day`.
    clock: i64,
    started: i64,
}

impl<'a> Session<'a> {
    fn new(
        rng: &mut StdRng,
        customer: &'a Customer,
        habits: &'a Habits,
        mood: Mood,
        day: NaiveDate,
    ) -> Self {
        let hour = *pick(rng, &HOURS);
        let clock = hour * 3_600_000 + between(rng, 0, 3_599_999);
        Self {
            customer,
            habits,
            mood,
            legacy: chance(rng, habits.legacy_share),
            session_id: format!("s-{:016x}", rng.random::<u64>()),
            day,
            clock,
            started: clock,
        }
    }

    fn play(&mut self, rng: &mut StdRng, out: &mut Vec<(i64, String)>) {
        let entry = *pick(
            rng,
            &[
                ("direct", 0.5),
                ("push", 0.25),
                ("email", 0.1),
                ("deep_link", 0.15),
            ],
        );
        let props = if self.legacy {
            format!(r#"{{"entry":"{entry}","sdk":"legacy-1.9"}}"#)
        } else {
            format!(r#"{{"entry":"{entry}"}}"#)
        };
        self.emit(rng, out, "session_start", &props);

        let propensity = self.customer.propensity;
        let views = 1 + poisson(rng, 1.6);
        for _ in 0..views {
            self.wait(rng, 45.0);
            let page = pick(rng, pages(self.mood));
            let page = match *page {
                "/watch/" => format!("/watch/{}", between(rng, 1000, 9999)),
                other => other.to_string(),
            };
            let load_ms = between(rng, 80, 1500);
            let props = format!(
                r#"{{"page":"{page}","load_ms":{load_ms}{}}}"#,
                self.experiment()
            );
            self.emit(rng, out, "page_view", &props);

            if chance(rng, 0.3) {
                self.wait(rng, 8.0);
                let element = *pick(rng, &hover_targets(self.mood, propensity));
                let duration_ms = between(rng, 150, 3000);
                let duration = if self.legacy || chance(rng, 0.05) {
                    format!(r#""{duration_ms}""#)
                } else {
                    duration_ms.to_string()
                };
                let props = format!(r#"{{"element":"{element}","duration_ms":{duration}}}"#);
                self.emit(rng, out, "hover", &props);
            }
            if chance(rng, 0.2) {
                self.wait(rng, 10.0);
                let element = *pick(rng, &click_targets(self.mood));
                let props = format!(r#"{{"element":"{element}"{}}}"#, self.experiment());
                self.emit(rng, out, "click", &props);
            }
        }
        if chance(rng, support_call_rate(self.mood, propensity)) {
            self.wait(rng, 30.0);
            let reason = *pick(rng, &call_reasons(self.mood));
            let channel = *pick(rng, &[("chat", 0.6), ("phone", 0.4)]);
            let wait_s = between(rng, 10, 900);
            let props =
                format!(r#"{{"reason":"{reason}","wait_s":{wait_s},"channel":"{channel}"}}"#);
            self.emit(rng, out, "support_call", &props);
        }
        self.wait(rng, 20.0);
        let props = format!(r#"{{"duration_s":{}}}"#, (self.clock - self.started) / 1000);
        self.emit(rng, out, "session_end", &props);
    }

    /// Moves the clock on by an exponential number of seconds.
    fn wait(&mut self, rng: &mut StdRng, mean_s: f64) {
        self.clock += 1000 + (exponential(rng, mean_s) * 1000.0) as i64;
    }

    fn experiment(&self) -> String {
        match self.habits.experiment_bucket {
            Some(bucket) if !self.legacy => format!(r#","x_exp":{{"bucket":"{bucket}"}}"#),
            _ => String::new(),
        }
    }

    /// Appends one event (twice, now and then: a client retry).
    fn emit(&self, rng: &mut StdRng, out: &mut Vec<(i64, String)>, kind: &str, props: &str) {
        let day = add_days(self.day, self.clock.div_euclid(MS_PER_DAY));
        let ms = self.clock.rem_euclid(MS_PER_DAY);
        let (year, month, dom) = (day.year(), day.month(), day.day());
        let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
        let id = rng.random::<u128>();
        let mut line = String::with_capacity(320);
        // Writing to a `String` cannot fail.
        let _ = if self.legacy {
            write!(
                line,
                r#"{{"event_id":"evt_{:020x}","ts":"{year:04}-{month:02}-{dom:02}T{h:02}:{m:02}:{s:02}Z","type":"{kind}","session_id":"{}","userId":{},"props":"#,
                id >> 48,
                self.session_id,
                self.customer.id,
            )
        } else {
            write!(
                line,
                r#"{{"event_id":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","ts":"{year:04}-{month:02}-{dom:02}T{h:02}:{m:02}:{s:02}.{:03}Z","type":"{kind}","session_id":"{}","user":{{"customer_id":{},"device":{{"os":"{}","app_version":"{}"}}}},"props":"#,
                id >> 96,
                (id >> 80) & 0xffff,
                (id >> 68) & 0xfff,
                (id >> 52) & 0xffff,
                id & 0xffff_ffff_ffff,
                ms % 1000,
                self.session_id,
                self.customer.id,
                self.habits.os,
                self.habits.app_version,
            )
        };
        push_json_string(&mut line, props);
        line.push('}');
        let ts = i64::from(day.num_days_from_ce()) * MS_PER_DAY + ms;
        if chance(rng, 0.005) {
            out.push((ts, line.clone()));
        }
        out.push((ts, line));
    }
}

/// Pages viewed, by mood (`/watch/` gets a title number).
fn pages(mood: Mood) -> &'static [(&'static str, f64)] {
    match mood {
        Mood::Leaving => &[
            ("/home", 0.2),
            ("/browse", 0.1),
            ("/watch/", 0.1),
            ("/search", 0.05),
            ("/pricing", 0.15),
            ("/account", 0.2),
            ("/account/cancel", 0.12),
            ("/help", 0.08),
        ],
        Mood::Gone => &[
            ("/home", 0.3),
            ("/browse", 0.15),
            ("/pricing", 0.25),
            ("/account", 0.2),
            ("/help", 0.1),
        ],
        Mood::PaymentTrouble => &[
            ("/home", 0.3),
            ("/browse", 0.15),
            ("/watch/", 0.2),
            ("/account", 0.15),
            ("/account/billing", 0.15),
            ("/help", 0.05),
        ],
        Mood::Content | Mood::Wobbling => &[
            ("/home", 0.3),
            ("/browse", 0.22),
            ("/watch/", 0.28),
            ("/search", 0.08),
            ("/pricing", 0.04),
            ("/account", 0.05),
            ("/help", 0.03),
        ],
    }
}

/// What a hover lands on: the cancel link gets attention from those who
/// think of leaving.
fn hover_targets(mood: Mood, propensity: f64) -> [(&'static str, f64); 3] {
    let cancel = match mood {
        Mood::Content => 0.015 * (0.6 * propensity).exp(),
        Mood::PaymentTrouble => 0.08,
        Mood::Gone => 0.2,
        Mood::Wobbling => 0.35,
        Mood::Leaving => 0.6,
    };
    let subscribe = if mood == Mood::Gone { 0.5 } else { 0.3 };
    [
        ("cancel_link", cancel),
        ("subscribe_button", subscribe),
        ("upgrade_banner", (1.0 - cancel - subscribe).max(0.05)),
    ]
}

fn click_targets(mood: Mood) -> [(&'static str, f64); 5] {
    let cancel = match mood {
        Mood::Leaving => 0.2,
        Mood::Wobbling | Mood::Gone => 0.05,
        _ => 0.005,
    };
    [
        ("play_button", 0.5),
        ("search_box", 0.2),
        ("upgrade_banner", 0.08),
        ("help_center", 0.12),
        ("cancel_link", cancel),
    ]
}

/// Chance that a session includes a support call.
fn support_call_rate(mood: Mood, propensity: f64) -> f64 {
    match mood {
        Mood::Content => 0.02 * (0.5 * propensity).exp(),
        Mood::Gone => 0.08,
        Mood::Wobbling => 0.12,
        Mood::Leaving => 0.3,
        Mood::PaymentTrouble => 0.35,
    }
}

fn call_reasons(mood: Mood) -> [(&'static str, f64); 3] {
    let (billing, bug, cancel) = match mood {
        Mood::Content => (0.35, 0.55, 0.10),
        Mood::Wobbling => (0.3, 0.4, 0.3),
        Mood::Leaving => (0.15, 0.15, 0.7),
        Mood::Gone => (0.3, 0.1, 0.6),
        Mood::PaymentTrouble => (0.85, 0.1, 0.05),
    };
    [
        ("billing", billing),
        ("bug", bug),
        ("cancel_request", cancel),
    ]
}

/// Appends `text` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut copied = 0;
    for (i, byte) in text.bytes().enumerate() {
        // Only ASCII bytes need escaping, so `i` is a character boundary.
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[copied..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        copied = i + 1;
    }
    out.push_str(&text[copied..]);
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::demo::subscriptions::simulate_customer;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "{\"a\":\"b\\c\n\u{1}\"}");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "{\"a\":\"b\\c\n\u{1}\"}");
    }

    #[test]
    fn sessions_run_from_start_to_end_with_props_by_type() {
        let customers: Vec<Customer> = (0..200)
            .map(|id| simulate_customer(3, id, date(2025, 11, 1), date(2026, 11, 1)))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let stream = Clickstream::new(3, &customers);
        let file = MonthFile {
            from: date(2026, 3, 1),
            until: date(2026, 4, 1),
            path: path.clone(),
        };
        let n = stream.write_files(&[file]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), n);
        assert!(n > 500, "{n}");
        let mut sessions = std::collections::BTreeMap::<String, Vec<String>>::new();
        let mut legacy = 0;
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let kind = event["type"].as_str().unwrap().to_string();
            let props: serde_json::Value =
                serde_json::from_str(event["props"].as_str().unwrap()).unwrap();
            match kind.as_str() {
                "page_view" => assert!(props["page"].as_str().unwrap().starts_with('/')),
                "hover" => {
                    assert!(props["duration_ms"].is_u64() || props["duration_ms"].is_string())
                }
                "support_call" => assert!(props["reason"].is_string() && props["wait_s"].is_u64()),
                _ => {}
            }
            match event.get("user") {
                Some(user) => {
                    assert!(user["customer_id"].is_i64() && event.get("userId").is_none())
                }
                None => {
                    assert!(event["userId"].is_i64());
                    legacy += 1;
                }
            }
            let session = event["session_id"].as_str().unwrap().to_string();
            sessions.entry(session).or_default().push(kind);
        }
        let share = legacy as f64 / n as f64;
        assert!((0.03..0.2).contains(&share), "legacy share {share}");
        for kinds in sessions.values() {
            // Sorted by time, and a retry may repeat the last event.
            assert_eq!(kinds.first().map(String::as_str), Some("session_start"));
            assert_eq!(kinds.last().map(String::as_str), Some("session_end"));
        }
    }
}
