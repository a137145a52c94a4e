//! Table functions: functions called in `FROM`.
//!
//! | function | rows |
//! |---|---|
//! | [`generate_series(start, stop [, step])`](series::SeriesFunc) | `start` to `stop` inclusive |
//! | [`range(start, stop [, step])`](series::SeriesFunc) | `start` to `stop` exclusive |

pub mod series;

use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;

/// The table functions Ember adds (or replaces), by name.
pub fn table_functions() -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        (
            "generate_series",
            Arc::new(series::SeriesFunc::generate_series()),
        ),
        ("range", Arc::new(series::SeriesFunc::range())),
    ]
}
