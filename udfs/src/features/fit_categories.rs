//! `fit_categories(x [, max_categories])`: the vocabulary of a categorical column.
//!
//! Returns `{"categories":["b","a",…]}`: the distinct non-null values, most
//! frequent first, ties broken by ascending value (byte order of the text), so
//! the list — and every index [`ordinal_encode`](super::ordinal_encode) and
//! [`one_hot`](super::one_hot) derive from it — is the same for any
//! partitioning. Strings are taken as they are, integers as their decimal text
//! (so `10` sorts before `9` on ties). With `max_categories`, only the first
//! that many are kept; the rest fall in the apply functions' unseen bucket,
//! like scikit-learn's `OneHotEncoder(max_categories=…)` infrequent category.
//!
//! The state is each partition's distinct values and their counts, two lists
//! merged by adding counts.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, DocumentationBuilder, Signature,
    Volatility,
};
use serde::{Deserialize, Serialize};

use super::args::{
    check_arity, coerce_category, coerce_integer, for_each_text, json_result, literal_integer,
    no_values,
};

const NAME: &str = "fit_categories";

/// The parameters `fit_categories` returns and `ordinal_encode` / `one_hot` read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoriesParams {
    /// The categories; a category's index is its position.
    pub categories: Vec<String>,
}

impl CategoriesParams {
    /// Category to index; `function` names the caller in the error for a
    /// repeated category.
    pub fn index(&self, function: &str) -> Result<HashMap<&str, i32>> {
        let mut index = HashMap::with_capacity(self.categories.len());
        for (i, category) in self.categories.iter().enumerate() {
            let Ok(i) = i32::try_from(i) else {
                return exec_err!("{function}: argument 'params' has more than 2^31 categories");
            };
            if index.insert(category.as_str(), i).is_some() {
                return exec_err!(
                    "{function}: argument 'params' lists category '{category}' twice"
                );
            }
        }
        Ok(index)
    }
}

/// The `fit_categories` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FitCategories {
    signature: Signature,
}

impl Default for FitCategories {
    fn default() -> Self {
        Self::new()
    }
}

impl FitCategories {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for FitCategories {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, arg_types, 1, 2, "(x [, max_categories])")?;
        let mut coerced = vec![coerce_category(NAME, "x", &arg_types[0])?];
        if let Some(max) = arg_types.get(1) {
            coerced.push(coerce_integer(NAME, "max_categories", max)?);
        }
        Ok(coerced)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |suffix: &str, item: DataType| {
            Arc::new(Field::new_list(
                format!("{}[{suffix}]", args.name),
                Field::new_list_field(item, true),
                true,
            ))
        };
        Ok(vec![
            list("categories", DataType::Utf8),
            list("counts", DataType::UInt64),
        ])
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let max_categories = match literal_integer(NAME, "max_categories", acc_args.exprs.get(1))? {
            None => None,
            Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(n) => {
                return plan_err!("{NAME}: argument 'max_categories' must be at least 1, got {n}");
            }
        };
        Ok(Box::new(CategoriesAccumulator::new(max_categories)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            DocumentationBuilder::new_with_details(
                DocSection {
                    include: true,
                    label: "Ember Feature Functions",
                    description: None,
                },
                "Fits a category vocabulary: returns the JSON object {\"categories\":[…]} with the \
                 distinct non-null values by descending count, then ascending value. Integers are \
                 read as decimal text. With max_categories only the most frequent are kept. \
                 Fitting on no value is an error. Apply it with ordinal_encode or one_hot.",
                "fit_categories(x [, max_categories])",
            )
            .with_sql_example("SELECT fit_categories(country, 50) FROM customers")
            .with_argument("x", "String or integer expression.")
            .with_argument(
                "max_categories",
                "Constant integer >= 1: keep this many most frequent (optional).",
            )
            .build()
        }))
    }
}

/// Counts per distinct value.
#[derive(Debug)]
pub struct CategoriesAccumulator {
    max_categories: Option<usize>,
    counts: HashMap<String, u64>,
}

impl CategoriesAccumulator {
    /// An empty accumulator.
    pub fn new(max_categories: Option<usize>) -> Self {
        Self {
            max_categories,
            counts: HashMap::new(),
        }
    }

    fn add(&mut self, category: &str, count: u64) {
        match self.counts.get_mut(category) {
            Some(c) => *c += count,
            None => {
                self.counts.insert(category.to_string(), count);
            }
        }
    }
}

impl Accumulator for CategoriesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return exec_err!("{NAME}: missing argument 'x'");
        };
        for_each_text(NAME, "x", x, |_, text| {
            if let Some(text) = text {
                self.add(text, 1);
            }
            Ok(())
        })
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (Some(categories), Some(counts)) = (
            states.first().and_then(|s| s.as_list_opt::<i32>()),
            states.get(1).and_then(|s| s.as_list_opt::<i32>()),
        ) else {
            return exec_err!("{NAME}: state is not two list columns");
        };
        for row in 0..categories.len() {
            if categories.is_null(row) || counts.is_null(row) {
                continue;
            }
            let names = categories.value(row);
            let numbers = counts.value(row);
            let (Some(names), Some(numbers)) = (
                names.as_string_opt::<i32>(),
                numbers.as_primitive_opt::<UInt64Type>(),
            ) else {
                return exec_err!("{NAME}: state lists are not Utf8 and UInt64");
            };
            for (name, count) in names.iter().zip(numbers.iter()) {
                if let (Some(name), Some(count)) = (name, count) {
                    self.add(name, count);
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(self.counts.keys()));
        let counts: ArrayRef =
            Arc::new(UInt64Array::from_iter_values(self.counts.values().copied()));
        Ok(vec![
            SingleRowListArrayBuilder::new(names).build_list_scalar(),
            SingleRowListArrayBuilder::new(counts).build_list_scalar(),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.counts.is_empty() {
            return no_values(NAME, "x");
        }
        let mut ranked: Vec<(&String, u64)> = self.counts.iter().map(|(k, v)| (k, *v)).collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        if let Some(max) = self.max_categories {
            ranked.truncate(max);
        }
        let categories = ranked.into_iter().map(|(k, _)| k.clone()).collect();
        json_result(NAME, &CategoriesParams { categories })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .counts
                .keys()
                .map(|k| k.capacity() + std::mem::size_of::<(String, u64)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    fn fitted(max: Option<usize>, parts: &[ArrayRef]) -> Result<String> {
        let mut merged = CategoriesAccumulator::new(max);
        for part in parts {
            let mut partial = CategoriesAccumulator::new(max);
            partial.update_batch(std::slice::from_ref(part))?;
            let state: Vec<ArrayRef> = partial
                .state()?
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&state)?;
        }
        Ok(merged
            .evaluate()?
            .try_as_str()
            .flatten()
            .unwrap()
            .to_string())
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    #[test]
    fn ordered_by_count_then_value() {
        let x = strings(&[
            Some("a"),
            Some("b"),
            None,
            Some("b"),
            Some("c"),
            Some("a"),
            Some("b"),
            None,
            None,
        ]);
        // b: 3, a: 2, c: 1; nulls are not a category.
        assert_eq!(
            fitted(None, std::slice::from_ref(&x)).unwrap(),
            r#"{"categories":["b","a","c"]}"#
        );
        assert_eq!(
            fitted(Some(2), &[x]).unwrap(),
            r#"{"categories":["b","a"]}"#
        );
        let ties = strings(&[Some("z"), Some("y"), Some("x")]);
        assert_eq!(
            fitted(None, &[ties]).unwrap(),
            r#"{"categories":["x","y","z"]}"#
        );
    }

    #[test]
    fn merged_partial_states_give_the_same_json() {
        let all: Vec<Option<&str>> = ["q", "w", "e", "q", "q", "w", "r", "t", "e", "e", "e"]
            .iter()
            .map(|s| Some(*s))
            .collect();
        let whole = fitted(None, &[strings(&all)]).unwrap();
        let split = fitted(
            None,
            &[strings(&all[7..]), strings(&[]), strings(&all[..7])],
        )
        .unwrap();
        assert_eq!(whole, split);
        assert_eq!(whole, r#"{"categories":["e","q","w","r","t"]}"#);
    }

    #[test]
    fn integers_are_decimal_text() {
        let x: ArrayRef = Arc::new(Int64Array::from(vec![9, 10, 10, -1]));
        assert_eq!(
            fitted(None, &[x]).unwrap(),
            r#"{"categories":["10","-1","9"]}"#
        );
    }

    #[test]
    fn only_nulls_is_an_error() {
        let err = fitted(None, &[strings(&[None])]).unwrap_err().to_string();
        assert!(err.contains("fit_categories: argument 'x' has no"), "{err}");
    }

    #[test]
    fn repeated_category_in_params_is_an_error() {
        let params = CategoriesParams {
            categories: vec!["a".into(), "a".into()],
        };
        let err = params.index("one_hot").unwrap_err().to_string();
        assert!(
            err.contains("one_hot: argument 'params' lists category 'a' twice"),
            "{err}"
        );
    }
}
