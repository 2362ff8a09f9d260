//! Order statistics of the benchmarks' samples, shared by the reports that take turns.

/// The `p` quantile (0 to 1) of `v`, which it sorts.
pub(crate) fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The median of `v`, which it sorts.
#[allow(dead_code)] // the codec report uses quartiles only
pub(crate) fn median(v: &mut [f64]) -> f64 {
    percentile(v, 0.5)
}
