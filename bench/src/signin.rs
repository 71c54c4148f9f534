//! `chalktalk bench signin`: what password checks cost a node. Runs the
//! server's own argon2id verifier (`accounts::password::Hasher`, OWASP
//! parameters, its concurrency cap and blocking pool) against a real hash:
//! one caller, then `--concurrency` callers, and reports verifications per
//! second and latency percentiles. Sign-ins per second per node are bounded
//! by this number (every sign-in verifies, unknown emails included).

use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::BenchError;
use chalktalk_services::accounts::password::Hasher;

#[derive(Args, Debug)]
pub struct SigninArgs {
    /// Verifications per run.
    #[arg(long, default_value_t = 40)]
    pub verifications: usize,
    /// Concurrent callers of the second run.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Accepted for symmetry; output is always JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug)]
pub struct Run {
    pub callers: usize,
    pub verifications: usize,
    pub seconds: f64,
    pub verifications_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize, Debug)]
pub struct SigninReport {
    /// `argon2id m=… t=…`.
    pub hasher: String,
    pub hash_ms: f64,
    pub runs: Vec<Run>,
}

async fn run_with(h: &Hasher, phc: &str, callers: usize, n: usize) -> Result<Run, BenchError> {
    let callers = callers.clamp(1, n.max(1));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for c in 0..callers {
        let (h, phc) = (h.clone(), phc.to_string());
        let share = n / callers + usize::from(c < n % callers);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                let ok = h.verify("correct horse battery staple", Some(&phc)).await;
                lat.push((t.elapsed().as_secs_f64() * 1000.0, ok));
            }
            lat
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.extend(t.await?);
    }
    let seconds = start.elapsed().as_secs_f64();
    if lat.iter().any(|(_, ok)| !ok) {
        return Err("a verification of the right password failed".into());
    }
    let mut ms: Vec<f64> = lat.into_iter().map(|(m, _)| m).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Run {
        callers,
        verifications: ms.len(),
        seconds,
        verifications_per_sec: ms.len() as f64 / seconds.max(1e-9),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: ms.last().copied().unwrap_or(0.0),
    })
}

pub async fn run(a: SigninArgs) -> Result<SigninReport, BenchError> {
    let h = Hasher::owasp()?;
    let t = Instant::now();
    let phc = h.hash("correct horse battery staple").await?;
    let hash_ms = t.elapsed().as_secs_f64() * 1000.0;
    let one = run_with(&h, &phc, 1, a.verifications).await?;
    let many = run_with(&h, &phc, a.concurrency, a.verifications).await?;
    Ok(SigninReport {
        hasher: format!("{h:?}"),
        hash_ms,
        runs: vec![one, many],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_real_verifications() {
        let r = run(SigninArgs {
            verifications: 3,
            concurrency: 2,
            json: true,
        })
        .await
        .expect("bench");
        assert!(r.hasher.contains("m=19456"), "{}", r.hasher);
        assert_eq!(r.runs.len(), 2);
        assert_eq!(r.runs[0].verifications, 3);
        assert_eq!(r.runs[1].callers, 2);
        assert!(
            r.runs
                .iter()
                .all(|x| x.p50_ms > 0.0 && x.verifications_per_sec > 0.0)
        );
    }
}
