//! The 22 TPC-H queries in DataFusion's SQL dialect (`queries/tpch/qN.sql`),
//! and the row counts of their answers.

/// One TPC-H query.
#[derive(Debug, Clone, Copy)]
pub struct TpchQuery {
    /// 1 to 22.
    pub number: usize,
    /// The SQL; query 15 has three statements (create view, select, drop view).
    pub sql: &'static str,
}

impl TpchQuery {
    /// The statements of the query, in order.
    pub fn statements(&self) -> Vec<&'static str> {
        self.sql
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The statement whose rows are the answer (query 15's `select`).
    pub fn answer_statement(&self) -> usize {
        if self.number == 15 { 1 } else { 0 }
    }

    /// Whether the answer's order is defined (the query ends with ORDER BY).
    pub fn is_ordered(&self) -> bool {
        self.statements()[self.answer_statement()]
            .to_ascii_lowercase()
            .contains("order by")
    }
}

const QUERIES: [&str; 22] = [
    include_str!("../../queries/tpch/q1.sql"),
    include_str!("../../queries/tpch/q2.sql"),
    include_str!("../../queries/tpch/q3.sql"),
    include_str!("../../queries/tpch/q4.sql"),
    include_str!("../../queries/tpch/q5.sql"),
    include_str!("../../queries/tpch/q6.sql"),
    include_str!("../../queries/tpch/q7.sql"),
    include_str!("../../queries/tpch/q8.sql"),
    include_str!("../../queries/tpch/q9.sql"),
    include_str!("../../queries/tpch/q10.sql"),
    include_str!("../../queries/tpch/q11.sql"),
    include_str!("../../queries/tpch/q12.sql"),
    include_str!("../../queries/tpch/q13.sql"),
    include_str!("../../queries/tpch/q14.sql"),
    include_str!("../../queries/tpch/q15.sql"),
    include_str!("../../queries/tpch/q16.sql"),
    include_str!("../../queries/tpch/q17.sql"),
    include_str!("../../queries/tpch/q18.sql"),
    include_str!("../../queries/tpch/q19.sql"),
    include_str!("../../queries/tpch/q20.sql"),
    include_str!("../../queries/tpch/q21.sql"),
    include_str!("../../queries/tpch/q22.sql"),
];

/// Query `number` (1 to 22).
pub fn query(number: usize) -> Option<TpchQuery> {
    QUERIES
        .get(number.checked_sub(1)?)
        .map(|sql| TpchQuery { number, sql })
}

/// 1 to 22.
pub fn query_numbers() -> std::ops::RangeInclusive<usize> {
    1..=22
}

/// Rows in the answer at scale factor 1, from the TPC-H specification's
/// reference answers.
pub fn sf1_row_count(number: usize) -> Option<usize> {
    const SF1: [usize; 22] = [
        4, 100, 10, 5, 5, 1, 4, 2, 175, 20, 1048, 2, 42, 1, 1, 18314, 1, 57, 1, 186, 100, 7,
    ];
    SF1.get(number.checked_sub(1)?).copied()
}

/// Rows in the answer at any scale factor from 0.1 up, for the queries whose
/// count does not depend on the data volume: they group by fixed domains
/// (return flags, order priorities, nations, years, ship modes, country
/// codes) or return one aggregate row. `None` for the others, whose counts
/// grow with the data (or are capped by a LIMIT only at larger scales).
pub fn scale_invariant_row_count(number: usize) -> Option<usize> {
    match number {
        // Q1: 4 (returnflag, linestatus) pairs; Q4: 5 order priorities;
        // Q5: the 5 nations of ASIA; Q7: 2 nation pairs x 2 years;
        // Q8: 2 years; Q9: 25 nations x 7 years; Q12: 2 ship modes;
        // Q22: 7 country codes.
        1 | 7 => Some(4),
        4 | 5 => Some(5),
        8 | 12 => Some(2),
        9 => Some(175),
        22 => Some(7),
        // One aggregate row.
        6 | 14 | 15 | 17 | 19 => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_queries_are_present() {
        for n in query_numbers() {
            let q = query(n).unwrap();
            assert!(q.sql.to_ascii_lowercase().contains("select"), "q{n}");
            assert!(sf1_row_count(n).is_some());
        }
        assert!(query(0).is_none() && query(23).is_none());
        assert_eq!(query(15).unwrap().statements().len(), 3);
        assert!(!query(6).unwrap().is_ordered());
        assert!(query(1).unwrap().is_ordered());
    }

    #[test]
    fn scale_invariant_counts_agree_with_sf1() {
        for n in query_numbers() {
            if let Some(count) = scale_invariant_row_count(n) {
                assert_eq!(Some(count), sf1_row_count(n), "q{n}");
            }
        }
    }
}
