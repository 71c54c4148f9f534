//! Latency summaries for the benchmarks.

use serde::Serialize;

/// Percentiles of a set of latency samples, in milliseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Summarises samples given in microseconds.
    pub fn from_micros(mut v: Vec<u64>) -> Summary {
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
            v[i] as f64 / 1000.0
        };
        Summary {
            count: v.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: v[v.len() - 1] as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_rank() {
        let s = Summary::from_micros((1..=1000).collect());
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_ms, 0.5);
        assert_eq!(s.p99_ms, 0.99);
        assert_eq!(s.p999_ms, 0.999);
        assert_eq!(s.max_ms, 1.0);
    }
}
