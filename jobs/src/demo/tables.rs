//! The churn data set's Parquet tables: `customers` and `billing`, written
//! with Arrow builders, one batch per file.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{Datelike, NaiveDate};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::subscriptions::Customer;
use crate::error::{JobsError, Result};

/// Days from 0001-01-01 (chrono's day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The `customers` table.
pub(crate) fn customers_batch(customers: &[Customer]) -> Result<RecordBatch> {
    let mut id = Int64Builder::new();
    let mut signup = Date32Builder::new();
    let mut plan = StringBuilder::new();
    let mut price = Float64Builder::new();
    let mut region = StringBuilder::new();
    let mut age = Int32Builder::new();
    let mut channel = StringBuilder::new();
    for c in customers {
        id.append_value(c.id);
        signup.append_value(date32(c.signup_date));
        plan.append_value(c.plan);
        price.append_value(c.monthly_price);
        region.append_value(c.region);
        age.append_option(c.age);
        channel.append_value(c.acquisition_channel);
    }
    let schema = Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("signup_date", DataType::Date32, false),
        Field::new("plan", DataType::Utf8, false),
        Field::new("monthly_price", DataType::Float64, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("age", DataType::Int32, true),
        Field::new("acquisition_channel", DataType::Utf8, false),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(signup.finish()),
        Arc::new(plan.finish()),
        Arc::new(price.finish()),
        Arc::new(region.finish()),
        Arc::new(age.finish()),
        Arc::new(channel.finish()),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// The `billing` rows of `customers`, in customer and date order.
pub(crate) fn billing_batch(customers: &[&Customer]) -> Result<RecordBatch> {
    let mut id = Int64Builder::new();
    let mut date = Date32Builder::new();
    let mut amount = Float64Builder::new();
    let mut failed = BooleanBuilder::new();
    let mut cancelled = BooleanBuilder::new();
    let mut new_customer = BooleanBuilder::new();
    for c in customers {
        for bill in &c.bills {
            id.append_value(c.id);
            date.append_value(date32(bill.date));
            amount.append_value(bill.amount);
            failed.append_value(bill.payment_failed);
            cancelled.append_value(bill.cancelled_service);
            new_customer.append_value(bill.new_customer);
        }
    }
    let schema = Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("billing_date", DataType::Date32, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("payment_failed", DataType::Boolean, false),
        Field::new("cancelled_service", DataType::Boolean, false),
        Field::new("new_customer", DataType::Boolean, false),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(date.finish()),
        Arc::new(amount.finish()),
        Arc::new(failed.finish()),
        Arc::new(cancelled.finish()),
        Arc::new(new_customer.finish()),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Writes one batch as `dir/name`, creating `dir`.
pub(crate) fn write_parquet(dir: &Path, name: &str, batch: RecordBatch) -> Result<()> {
    create_dir(dir)?;
    let path = dir.join(name);
    let file = std::fs::File::create(&path).map_err(|e| JobsError::io(&path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))
        .map_err(|e| JobsError::Output(e.into()))?;
    writer
        .write(&batch)
        .map_err(|e| JobsError::Output(e.into()))?;
    writer.close().map_err(|e| JobsError::Output(e.into()))?;
    Ok(())
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| JobsError::io(dir, e))
}

/// Days since 1970-01-01, Arrow's `Date32`.
fn date32(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::demo::subscriptions::simulate_customer;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn dates_count_days_from_the_unix_epoch() {
        assert_eq!(date32(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), 0);
        assert_eq!(
            date32(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()),
            20_758
        );
    }

    #[test]
    fn tables_round_trip_through_parquet() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let history_start = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
        let customers: Vec<Customer> = (1..=40)
            .map(|id| simulate_customer(5, id, history_start, as_of))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        write_parquet(
            dir.path(),
            "c.parquet",
            customers_batch(&customers).unwrap(),
        )
        .unwrap();
        let all: Vec<&Customer> = customers.iter().collect();
        write_parquet(dir.path(), "b.parquet", billing_batch(&all).unwrap()).unwrap();

        let read = |name: &str| {
            let file = std::fs::File::open(dir.path().join(name)).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
            arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
        };
        let c = read("c.parquet");
        assert_eq!(c.num_rows(), 40);
        assert_eq!(c.schema().field(5).name(), "age");
        assert!(c.schema().field(5).is_nullable());
        let b = read("b.parquet");
        let bills: usize = customers.iter().map(|c| c.bills.len()).sum();
        assert_eq!(b.num_rows(), bills);
        assert_eq!(b.schema(), billing_batch(&all).unwrap().schema());
    }
}
