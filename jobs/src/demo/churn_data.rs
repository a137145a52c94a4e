//! A synthetic subscription business for the churn example: customers,
//! their monthly bills and their app's telemetry, generated from a seed.
//!
//! [`generate_churn_data`] writes, under its output directory:
//!
//! * `customers/part-0.parquet`: `customer_id` Int64, `signup_date` Date32,
//!   `plan` Utf8 (`basic`, `standard`, `premium`), `monthly_price` Float64,
//!   `region` Utf8, `age` Int32 (about 5% null), `acquisition_channel` Utf8
//!   (`organic`, `paid_search`, `referral`, `partner`). Ids run from 1.
//! * `billing/part-{0..3}.parquet`, customers split by `customer_id % 4`:
//!   `customer_id` Int64, `billing_date` Date32, `amount` Float64,
//!   `payment_failed` Boolean, `cancelled_service` Boolean, `new_customer`
//!   Boolean. One row per customer per month of service, on the same day of
//!   the month (1 to 28), from the signup date up to `as_of` included.
//!   `new_customer` marks the first bill of a subscription spell (signup, or
//!   a restart), `cancelled_service` the last (the month the customer
//!   cancels; service runs until the next billing date). About 30% of those
//!   who cancel restart one to four months later. Customers acquired through
//!   paid search or partners pay half price on the first bill of a spell.
//!   A third of the customers signed up before the history window.
//! * `clickstream/events-YYYY-MM.ndjson`: one newline-delimited JSON file per
//!   calendar month of the history window (`months` months before `as_of`,
//!   up to the day before `as_of`), the app events of customers with service
//!   (including those who cancelled and wait out their paid month). Each line
//!   has `event_id`, `ts` (RFC 3339, UTC), `type`, `session_id` (top-level),
//!   the customer in `user.customer_id`, or for legacy clients in a top-level
//!   `userId`, and `props`, a string of JSON: see the `clickstream` module for
//!   its keys and quirks. Read it with
//!   `CREATE EXTERNAL TABLE clickstream STORED AS JSON LOCATION '.../clickstream/'`
//!   (`JsonReadOptions::default().file_extension(".ndjson")`).
//!
//! # The label
//!
//! Let `cutoff = as_of - 30 days`. A customer is *subscribed at the cutoff*
//! if their latest billing row dated on or before `cutoff` exists and has
//! `cancelled_service = false`. A subscribed customer is a *churner in the
//! label window* if they have a billing row with `cancelled_service = true`
//! dated in `(cutoff, as_of]` and no billing row with `new_customer = true`
//! dated after that row, up to `as_of`. In SQL, one row per customer
//! subscribed at the cutoff, with its label (shown for the default
//! `as_of = 2026-11-01`, `cutoff = 2026-10-02`):
//!
//! ```sql
//! SELECT customer_id,
//!        coalesce(max(billing_date) FILTER (WHERE cancelled_service AND billing_date > DATE '2026-10-02')
//!                 >= max(billing_date) FILTER (WHERE new_customer), false) AS churned
//! FROM billing
//! WHERE billing_date <= DATE '2026-11-01'
//! GROUP BY customer_id
//! HAVING max(billing_date) FILTER (WHERE billing_date <= DATE '2026-10-02')
//!      > coalesce(max(billing_date) FILTER (WHERE cancelled_service AND billing_date <= DATE '2026-10-02'),
//!                 DATE '1900-01-01')
//! ```
//!
//! Features must come from data before the cutoff (bills dated on or before
//! it, events with `ts` before it). Churn is predictable from them, with
//! noise: a hidden propensity per customer (raised by a dearer plan, paid
//! acquisition, youth, a short tenure, failed payments and a latent
//! dissatisfaction) sets the monthly chance to cancel, and also lowers the
//! number of sessions and raises support calls and hovers over the cancel
//! link. Most customers who cancel also spend their last three to seven weeks
//! visibly leaving: fewer sessions, visits to `/account/cancel`, hovers and
//! clicks on `cancel_link`, support calls with reason `cancel_request`; some
//! leave silently and some customers wobble without leaving. With the
//! default configuration about 10–20% of the customers subscribed at the
//! cutoff churn in the label window.
//!
//! Generation is deterministic for a given configuration: the same config
//! writes the same bytes. The whole data set is written to a hidden staging
//! sibling of the output directory and moved over it at the end (see
//! [`StagedOutput`]), so a killed generator never leaves half a data set.

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};

use super::clickstream::{Clickstream, MonthFile};
use super::subscriptions::{Customer, add_days, add_months, simulate_customer};
use super::tables::{billing_batch, create_dir, customers_batch, write_parquet};
use crate::error::{JobsError, Result};
use crate::sql::StagedOutput;

/// Days between the label cutoff and `as_of`.
pub const LABEL_WINDOW_DAYS: i64 = 30;
/// Billing files, customers split by `customer_id % BILLING_FILES`.
const BILLING_FILES: i64 = 4;

const DEFAULT_AS_OF: NaiveDate = match NaiveDate::from_ymd_opt(2026, 11, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnDataConfig {
    /// Number of customers (ids `1..=customers`).
    pub customers: usize,
    /// Seed of every random choice: the same config gives the same files.
    pub seed: u64,
    /// The day the data set is taken: bills up to and including it, events
    /// before it. The label window is the 30 days before it.
    pub as_of: NaiveDate,
    /// Months of clickstream history before `as_of`.
    pub months: u32,
}

impl Default for ChurnDataConfig {
    fn default() -> Self {
        Self {
            customers: 5000,
            seed: 7,
            as_of: DEFAULT_AS_OF,
            months: 12,
        }
    }
}

/// What [`generate_churn_data`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnDataSummary {
    /// Rows of `customers`.
    pub customers: usize,
    /// Rows of `billing`.
    pub billing_rows: usize,
    /// Lines of `clickstream` (retried duplicates included).
    pub events: usize,
    /// Customers subscribed at the cutoff who churn in the label window.
    pub churners_in_label_window: usize,
    /// The output directory, absolute.
    pub dir: PathBuf,
}

/// Generates the churn data set into `out_dir`, replacing whatever was there
/// only once the new data set is complete.
pub fn generate_churn_data(config: &ChurnDataConfig, out_dir: &Path) -> Result<ChurnDataSummary> {
    validate(config)?;
    let target = out_dir.to_str().ok_or_else(|| {
        JobsError::Usage(format!(
            "churn data: output directory {} is not valid UTF-8",
            out_dir.display()
        ))
    })?;
    let staged = StagedOutput::new(target)?.ok_or_else(|| {
        JobsError::Usage(format!(
            "churn data: output directory '{target}' must be a local path"
        ))
    })?;
    let staging = PathBuf::from(staged.staging_location());
    match write_data_set(config, &staging) {
        Ok(mut summary) => {
            summary.dir = staged.target().to_path_buf();
            staged.commit()?;
            Ok(summary)
        }
        Err(e) => {
            staged.abort();
            Err(e)
        }
    }
}

fn validate(config: &ChurnDataConfig) -> Result<()> {
    if config.customers == 0 {
        return Err(JobsError::Usage(
            "churn data: customers must be at least 1".to_string(),
        ));
    }
    if !(1..=120).contains(&config.months) {
        return Err(JobsError::Usage(format!(
            "churn data: months must be 1 to 120, not {}",
            config.months
        )));
    }
    if !(1900..=9000).contains(&config.as_of.year()) {
        return Err(JobsError::Usage(format!(
            "churn data: as_of must be a date between the years 1900 and 9000, not {}",
            config.as_of
        )));
    }
    Ok(())
}

fn write_data_set(config: &ChurnDataConfig, dir: &Path) -> Result<ChurnDataSummary> {
    let as_of = config.as_of;
    let history_start = add_months(as_of, -i64::from(config.months));
    let customers: Vec<Customer> = (1..=config.customers as i64)
        .map(|id| simulate_customer(config.seed, id, history_start, as_of))
        .collect();

    write_parquet(
        &dir.join("customers"),
        "part-0.parquet",
        customers_batch(&customers)?,
    )?;
    let mut billing_rows = 0;
    for part in 0..BILLING_FILES {
        let share: Vec<&Customer> = customers
            .iter()
            .filter(|c| c.id % BILLING_FILES == part)
            .collect();
        billing_rows += share.iter().map(|c| c.bills.len()).sum::<usize>();
        write_parquet(
            &dir.join("billing"),
            &format!("part-{part}.parquet"),
            billing_batch(&share)?,
        )?;
    }

    let clickstream_dir = dir.join("clickstream");
    create_dir(&clickstream_dir)?;
    let mut files = Vec::new();
    let mut month_start = history_start.with_day(1).unwrap_or(history_start);
    while month_start < as_of {
        let next = add_months(month_start, 1);
        files.push(MonthFile {
            from: month_start.max(history_start),
            until: next.min(as_of),
            path: clickstream_dir.join(format!(
                "events-{:04}-{:02}.ndjson",
                month_start.year(),
                month_start.month()
            )),
        });
        month_start = next;
    }
    let events = Clickstream::new(config.seed, &customers).write_files(&files)?;

    let churners = customers
        .iter()
        .filter(|c| churns_in_label_window(c, as_of))
        .count();
    Ok(ChurnDataSummary {
        customers: customers.len(),
        billing_rows,
        events,
        churners_in_label_window: churners,
        dir: dir.to_path_buf(),
    })
}

/// The label cutoff: features are computed from data before it.
fn label_cutoff(as_of: NaiveDate) -> NaiveDate {
    add_days(as_of, -LABEL_WINDOW_DAYS)
}

/// Whether a customer is subscribed at the cutoff and churns in the label
/// window (see the module documentation).
fn churns_in_label_window(customer: &Customer, as_of: NaiveDate) -> bool {
    let cutoff = label_cutoff(as_of);
    let bills = &customer.bills;
    let subscribed = bills
        .iter()
        .rev()
        .find(|b| b.date <= cutoff)
        .is_some_and(|b| !b.cancelled_service);
    subscribed
        && bills.iter().any(|cancel| {
            cancel.cancelled_service
                && cutoff < cancel.date
                && cancel.date <= as_of
                && !bills
                    .iter()
                    .any(|b| b.new_customer && cancel.date < b.date && b.date <= as_of)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use datafusion::prelude::{JsonReadOptions, ParquetReadOptions, SessionContext};

    fn small(customers: usize) -> ChurnDataConfig {
        ChurnDataConfig {
            customers,
            months: 4,
            ..ChurnDataConfig::default()
        }
    }

    /// Every file under `dir`, relative path and bytes, in path order.
    fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(next) = stack.pop() {
            for entry in std::fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    files.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn the_same_config_writes_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let config = small(150);
        let a = generate_churn_data(&config, &dir.path().join("a")).unwrap();
        let b = generate_churn_data(&config, &dir.path().join("b")).unwrap();
        assert_eq!(a.dir, std::path::absolute(dir.path().join("a")).unwrap());
        assert_eq!(
            (
                a.customers,
                a.billing_rows,
                a.events,
                a.churners_in_label_window
            ),
            (
                b.customers,
                b.billing_rows,
                b.events,
                b.churners_in_label_window
            )
        );
        let (files_a, files_b) = (contents(&a.dir), contents(&b.dir));
        assert_eq!(files_a, files_b);
        let names: Vec<String> = files_a
            .iter()
            .map(|(p, _)| p.to_string_lossy().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "billing/part-0.parquet",
                "billing/part-1.parquet",
                "billing/part-2.parquet",
                "billing/part-3.parquet",
                "clickstream/events-2026-07.ndjson",
                "clickstream/events-2026-08.ndjson",
                "clickstream/events-2026-09.ndjson",
                "clickstream/events-2026-10.ndjson",
                "customers/part-0.parquet",
            ]
        );

        let other_seed = ChurnDataConfig { seed: 8, ..config };
        let c = generate_churn_data(&other_seed, &dir.path().join("c")).unwrap();
        assert_ne!(contents(&c.dir), files_a);
    }

    #[test]
    fn every_event_line_is_json_with_id_time_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate_churn_data(&small(100), dir.path()).unwrap();
        let mut lines = 0;
        for entry in std::fs::read_dir(summary.dir.join("clickstream")).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines() {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(event["event_id"].is_string(), "{line}");
                let ts = event["ts"].as_str().unwrap();
                chrono::DateTime::parse_from_rfc3339(ts).unwrap();
                let kind = event["type"].as_str().unwrap();
                assert!(
                    [
                        "session_start",
                        "page_view",
                        "hover",
                        "click",
                        "support_call",
                        "session_end"
                    ]
                    .contains(&kind),
                    "{line}"
                );
                let props: serde_json::Value =
                    serde_json::from_str(event["props"].as_str().unwrap()).unwrap();
                assert!(props.is_object(), "{line}");
                lines += 1;
            }
        }
        assert_eq!(lines, summary.events);
    }

    #[tokio::test]
    async fn churners_match_the_documented_label_query() {
        let dir = tempfile::tempdir().unwrap();
        let config = ChurnDataConfig {
            customers: 1500,
            ..ChurnDataConfig::default()
        };
        let summary = generate_churn_data(&config, dir.path()).unwrap();

        let ctx = SessionContext::new();
        let billing = summary.dir.join("billing");
        ctx.register_parquet(
            "billing",
            billing.to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let clickstream = summary.dir.join("clickstream");
        ctx.register_json(
            "clickstream",
            clickstream.to_str().unwrap(),
            JsonReadOptions::default().file_extension(".ndjson"),
        )
        .await
        .unwrap();

        let sql = LABEL_SQL
            .replace("2026-10-02", &label_cutoff(config.as_of).to_string())
            .replace("2026-11-01", &config.as_of.to_string());
        let labels = format!(
            "SELECT count(*) AS subscribed, sum(CAST(churned AS BIGINT)) AS churners FROM ({sql})"
        );
        let batches = ctx.sql(&labels).await.unwrap().collect().await.unwrap();
        let column = |i: usize| {
            batches[0]
                .column(i)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .value(0)
        };
        let (subscribed, churners) = (column(0), column(1));
        assert_eq!(churners as usize, summary.churners_in_label_window);
        let rate = churners as f64 / subscribed as f64;
        assert!((0.08..0.25).contains(&rate), "{churners} of {subscribed}");

        let rows: i64 = ctx
            .sql("SELECT count(*) FROM billing")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(rows as usize, summary.billing_rows);

        // Schema inference sees both the nested and the legacy customer id.
        let ids = ctx
            .sql("SELECT count(coalesce(user['customer_id'], \"userId\")) = count(*) AS all_have_ids FROM clickstream")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let all = ids[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::BooleanArray>()
            .unwrap()
            .value(0);
        assert!(all);
    }

    #[test]
    fn a_new_data_set_replaces_the_old_one_as_a_whole() {
        let parent = tempfile::tempdir().unwrap();
        let out = parent.path().join("churn");
        std::fs::create_dir_all(out.join("billing")).unwrap();
        std::fs::write(out.join("billing/part-9.parquet"), b"stale").unwrap();
        std::fs::write(out.join("notes.txt"), b"stale").unwrap();

        let summary = generate_churn_data(&small(20), &out).unwrap();
        assert!(!out.join("notes.txt").exists());
        assert!(!out.join("billing/part-9.parquet").exists());
        assert!(out.join("billing/part-3.parquet").exists());
        assert_eq!(summary.customers, 20);
        let siblings: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
        assert_eq!(siblings.len(), 1, "no staging or previous directory left");

        // A refused config leaves the data set alone.
        let bad = ChurnDataConfig {
            months: 0,
            ..small(20)
        };
        assert!(matches!(
            generate_churn_data(&bad, &out),
            Err(JobsError::Usage(_))
        ));
        assert!(out.join("billing/part-3.parquet").exists());
    }

    #[test]
    fn the_label_follows_the_documented_definition() {
        use super::super::subscriptions::Bill;
        let as_of = DEFAULT_AS_OF;
        let bill = |y, m, d, cancelled, new| Bill {
            date: NaiveDate::from_ymd_opt(y, m, d).unwrap(),
            amount: 9.99,
            payment_failed: false,
            cancelled_service: cancelled,
            new_customer: new,
        };
        let mut customer = simulate_customer(1, 1, add_months(as_of, -12), as_of);
        let mut label = |bills: Vec<Bill>| {
            customer.bills = bills;
            churns_in_label_window(&customer, as_of)
        };
        // Cancels on 2026-10-05, in the window.
        assert!(label(vec![
            bill(2026, 9, 5, false, true),
            bill(2026, 10, 5, true, false)
        ]));
        // Cancelled before the cutoff: not subscribed at the cutoff.
        assert!(!label(vec![
            bill(2026, 9, 1, true, true),
            bill(2026, 10, 20, true, true)
        ]));
        // The cutoff day itself belongs before the window.
        assert!(!label(vec![
            bill(2026, 9, 2, false, true),
            bill(2026, 10, 2, true, false)
        ]));
        // Billed on as_of and cancelling: churns.
        assert!(label(vec![
            bill(2026, 10, 1, false, true),
            bill(2026, 11, 1, true, false)
        ]));
        // Cancels, then restarts by as_of: stays.
        assert!(!label(vec![
            bill(2026, 9, 3, false, true),
            bill(2026, 10, 3, true, false),
            bill(2026, 10, 30, false, true),
        ]));
        // Signed up after the cutoff: not subscribed at the cutoff.
        assert!(!label(vec![bill(2026, 10, 10, true, true)]));
    }

    /// The SQL of the module documentation.
    const LABEL_SQL: &str = "
        SELECT customer_id,
               coalesce(max(billing_date) FILTER (WHERE cancelled_service AND billing_date > DATE '2026-10-02')
                        >= max(billing_date) FILTER (WHERE new_customer), false) AS churned
        FROM billing
        WHERE billing_date <= DATE '2026-11-01'
        GROUP BY customer_id
        HAVING max(billing_date) FILTER (WHERE billing_date <= DATE '2026-10-02')
             > coalesce(max(billing_date) FILTER (WHERE cancelled_service AND billing_date <= DATE '2026-10-02'),
                        DATE '1900-01-01')";
}
