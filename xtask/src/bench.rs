//! `cargo xtask bench`: each benchmark runs its candidate and its baseline
//! side by side in the same boot, round after round, and reports medians and
//! the candidate/baseline ratio. Figures belong in docs/benchmarks.md.

use anyhow::{bail, Result};

use crate::lab::cache::Cache;
use crate::lab::cases::{self, Plan};
use crate::lab::payload::Case;
use crate::lab::Arch;

const GUEST_BOOT: Case =
    Case { name: "guest-boot", script: include_str!("lab/assets/benches/guest-boot.sh"), timeout_secs: 600 };

/// One benchmark's measurements, in milliseconds.
#[derive(Debug, Default, PartialEq)]
struct Samples {
    baseline: Vec<u64>,
    candidate: Vec<u64>,
}

fn median(values: &[u64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

/// Parses `BENCH<TAB>case<TAB>baseline|candidate<TAB>millis` lines for `case`.
fn samples(text: &str, case: &str) -> Result<Samples> {
    let mut samples = Samples::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let ["BENCH", name, role, millis] = fields[..] else {
            bail!("malformed benchmark line from dom0: {line:?}");
        };
        if name != case {
            continue;
        }
        let millis: u64 = millis.parse().map_err(|_| anyhow::anyhow!("bad milliseconds in {line:?}"))?;
        match role {
            "baseline" => samples.baseline.push(millis),
            "candidate" => samples.candidate.push(millis),
            other => bail!("unknown role {other:?} in {line:?}"),
        }
    }
    Ok(samples)
}

pub fn run(cache: &Cache, arches: &[Arch]) -> Result<bool> {
    let benches = [GUEST_BOOT];
    println!("{:<8} {:<12} {:>14} {:>14} {:>7}  rounds", "arch", "benchmark", "baseline ms", "candidate ms", "ratio");
    let mut complete = true;
    for &arch in arches {
        let report = cases::run(cache, Plan::main(arch), &benches)?;
        let text = report.share.read("bench");
        for bench in &benches {
            let s = samples(&text, bench.name)?;
            match (median(&s.baseline), median(&s.candidate)) {
                (Some(base), Some(cand)) => println!(
                    "{:<8} {:<12} {:>14.0} {:>14.0} {:>6.2}x  {}",
                    arch.name(),
                    bench.name,
                    base,
                    cand,
                    cand / base,
                    s.candidate.len().min(s.baseline.len())
                ),
                _ => {
                    complete = false;
                    println!(
                        "{:<8} {:<12} no measurements: see {}",
                        arch.name(),
                        bench.name,
                        report.serial_log.display()
                    );
                }
            }
        }
        complete &= report.passed();
    }
    println!("baseline: `xl create -p` + `xl destroy` (domain build only); candidate: `xl create` until the guest powers off");
    Ok(complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_samples() {
        assert_eq!(median(&[30, 10, 20]), Some(20.0));
        assert_eq!(median(&[10, 40]), Some(25.0));
        assert_eq!(median(&[]), None);
        let text = "BENCH\tguest-boot\tbaseline\t100\nBENCH\tother\tbaseline\t1\nBENCH\tguest-boot\tcandidate\t250\n";
        assert_eq!(samples(text, "guest-boot").unwrap(), Samples { baseline: vec![100], candidate: vec![250] });
        assert!(samples("BENCH\tguest-boot\tnobody\t1\n", "guest-boot").is_err());
    }
}
