//! Dense symmetric positive-definite solves for the normal equations of
//! linear and logistic regression (a few dozen unknowns: Cholesky is exact
//! enough and needs no dependency).

/// Solves `A x = b` for symmetric positive-definite `A` (row-major, `n × n`).
/// Returns `Err(i)` when pivot `i` is not positive: variable `i` is constant or
/// a linear combination of the others.
pub fn cholesky_solve(a: &[f64], b: &[f64]) -> Result<Vec<f64>, usize> {
    let n = b.len();
    let mut l = vec![0.0; n * n];
    // Scale for the pivot test: a pivot below this is numerically zero.
    let max_diag = (0..n).map(|i| a[i * n + i].abs()).fold(0.0_f64, f64::max);
    let floor = max_diag * 1e-13;
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= l[j * n + k] * l[j * n + k];
        }
        // NaN (from NaN input) fails the test too.
        if d.is_nan() || d <= floor {
            return Err(j);
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            l[i * n + j] = s / d;
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_small_system_and_names_the_singular_pivot() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&a, &[6.0, 5.0]).unwrap();
        assert!(
            (x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12,
            "{x:?}"
        );
        assert_eq!(cholesky_solve(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0]), Err(1));
    }
}
