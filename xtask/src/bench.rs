//! `cargo xtask bench`: each benchmark runs its candidate and its baseline
//! side by side in the same boot, round after round, and reports medians and
//! the candidate/baseline ratio. Figures belong in docs/benchmarks.md.
//! Host-side benchmarks (packing) run both sides on the host, alternately.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::arch::Arch;
use crate::lab::cache::Cache;
use crate::lab::cases::{self, Plan};
use crate::lab::payload::Case;
use crate::lab::{runx_guests, runx_runtime};

const GUEST_BOOT: Case = Case::builtin("guest-boot", include_str!("lab/assets/benches/guest-boot.sh"), 600);
/// The BENCH names each case writes.
const MEASURES: &[(&str, &[&str])] = &[
    ("guest-boot", &["guest-boot"]),
    ("runx-init-boot", &["runx-init-boot"]),
    ("runtime", &["runx-start", "runx-direct-start", "ctr-to-create", "runx-vs-runc", "runx-state"]),
    ("network-bench", &["net-start", "net-throughput", "net-get10"]),
];

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

/// Parses `BENCH<TAB>case<TAB>baseline|candidate<TAB>millis` lines for `case`; `CPU` lines
/// (see `cpu_times`) and `NOTE` lines (printed as they are) are skipped.
fn samples(text: &str, case: &str) -> Result<Samples> {
    let mut samples = Samples::default();
    for line in text.lines().filter(|l| !l.starts_with("CPU\t") && !l.starts_with("NOTE\t")) {
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

/// `CPU<TAB>what<TAB>millis` lines: a cost measured alone, with no baseline.
fn cpu_times(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("CPU\t"))
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(what, ms)| Some((what.to_owned(), ms.parse().ok()?)))
        .collect()
}

/// Hard-links files from `source` (sorted) into a fresh tree until it holds `bytes`.
fn sample_tree(source: &Path, dest: &Path, bytes: u64) -> Result<u64> {
    if dest.exists() {
        fs::remove_dir_all(dest)?;
    }
    let mut total = 0;
    for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(source)?;
        let target = dest.join(rel);
        fs::create_dir_all(target.parent().expect("under dest"))?;
        fs::hard_link(entry.path(), &target)?;
        total += entry.metadata()?.len();
        if total >= bytes {
            break;
        }
    }
    Ok(total)
}

/// Builds the release runx-tools, as users run it.
fn release_runx_tools() -> Result<std::path::PathBuf> {
    crate::cmd::output(crate::cmd::cargo()?.args(["build", "--release", "--package", "runx-tools"]))?;
    Ok(crate::workspace::root()?.join("target/release/runx-tools"))
}

/// Packing a 200 MiB root into the per-container archive against `find | cpio -o -H newc | gzip -1`.
fn packing(cache: &Cache) -> Result<()> {
    let modules = crate::lab::dom0::build(cache, Arch::X86_64)?.packages.join("lib/modules");
    let tree = cache.root().join("bench-tree");
    let bytes = sample_tree(&modules, &tree, 200 << 20)?;
    let out = cache.root().join("bench-pack.out");
    let spec_path = cache.root().join("bench-pack.json");
    fs::write(&spec_path, runx_guests::spec(vec!["/bin/true".into()]).to_json()?)?;
    let tool = release_runx_tools()?;
    let (mut baseline, mut candidate) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let started = Instant::now();
        let script = format!("cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}", tree.display(), out.display());
        crate::cmd::run(Command::new("sh").arg("-c").arg(script))?;
        baseline.push(started.elapsed().as_millis() as u64);
        let started = Instant::now();
        let mut pack = Command::new(&tool);
        pack.arg("guest-archive").arg("--spec").arg(&spec_path).arg("--rootfs").arg(&tree).arg("-o").arg(&out);
        crate::cmd::run(&mut pack)?;
        candidate.push(started.elapsed().as_millis() as u64);
    }
    let cand_size = fs::metadata(&out)?.len();
    fs::remove_file(&out)?;
    fs::remove_file(&spec_path)?;
    fs::remove_dir_all(&tree)?;
    let (base, cand) = (median(&baseline).unwrap_or(0.0), median(&candidate).unwrap_or(0.0));
    println!(
        "{:<8} {:<12} {:>14.0} {:>14.0} {:>6.2}x  3  ({} MiB of kernel modules -> {} MiB)",
        "host",
        "pack-200mib",
        base,
        cand,
        cand / base,
        bytes >> 20,
        cand_size >> 20
    );
    Ok(())
}

pub fn run(cache: &Cache, arches: &[Arch]) -> Result<bool> {
    println!("{:<8} {:<12} {:>14} {:>14} {:>7}  rounds", "arch", "benchmark", "baseline ms", "candidate ms", "ratio");
    let mut complete = true;
    for &arch in arches {
        let benches = match arch {
            Arch::X86_64 => vec![GUEST_BOOT, runx_guests::BENCH, runx_runtime::BENCH, runx_runtime::NETWORK_BENCH],
            Arch::Arm64 => vec![GUEST_BOOT],
        };
        let report = cases::run(cache, Plan::main(arch), &benches)?;
        let text = report.share.read("bench");
        let names = benches
            .iter()
            .flat_map(|b| MEASURES.iter().find(|(case, _)| *case == b.name))
            .flat_map(|(_, names)| names.iter());
        for name in names {
            let s = samples(&text, name)?;
            match (median(&s.baseline), median(&s.candidate)) {
                (Some(base), Some(cand)) => println!(
                    "{:<8} {:<12} {:>14.0} {:>14.0} {:>6.2}x  {}",
                    arch.name(),
                    name,
                    base,
                    cand,
                    cand / base,
                    s.candidate.len().min(s.baseline.len())
                ),
                _ => {
                    complete = false;
                    println!("{:<8} {:<12} no measurements: see {}", arch.name(), name, report.serial_log.display());
                }
            }
        }
        for note in text.lines().filter_map(|l| l.strip_prefix("NOTE\t")) {
            println!("{:<8} {note}", arch.name());
        }
        let cpu = cpu_times(&text);
        for what in cpu.iter().map(|(w, _)| w).collect::<std::collections::BTreeSet<_>>() {
            let values: Vec<u64> = cpu.iter().filter(|(w, _)| w == what).map(|(_, ms)| (*ms * 10.0) as u64).collect();
            let med = median(&values).unwrap_or(0.0) / 10.0;
            println!("{:<8} cpu: {what}: median {med:.1} ms of {} rounds (xl excluded)", arch.name(), values.len());
        }
        complete &= report.passed();
    }
    packing(cache)?;
    println!("guest-boot: baseline `xl create -p` + `xl destroy` (domain build only), candidate `xl create` until the guest powers off");
    println!("runx-init-boot: baseline a bare /init that prints and powers off, candidate runx-init running the same program");
    println!("runx-start: baseline a bare `xl create` (same kernel, /init prints a line) to that line, candidate `ctr run` with runx to its first line");
    println!("runx-direct-start: the same floor, candidate `runx create` + `runx start` of a bundle running the same program (no containerd)");
    println!("ctr-to-create: the same floor, candidate the time from `ctr run` to containerd calling the runtime's `create` (containerd's share)");
    println!("runx-vs-runc: baseline `ctr run` with runc, candidate with runx, each to its first output line");
    println!("net-start: baseline `ctr run` with runx and no network, candidate `ctr run --cni` with runx, each to its first line");
    println!("net-throughput: 64 MiB from dom0 to a container's `nc -l` over the CNI bridge, baseline runc's container, candidate runx's");
    println!("net-get10: ten HTTP GETs in a row from dom0 to busybox httpd in the container, baseline runc's, candidate runx's");
    println!("runx-state: 20 calls of `runc state` (baseline) and `runx state` (candidate) on running containers");
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
        let text = "CPU\trunx create\t12.5\nBENCH\tx\tbaseline\t1\nCPU\tbad\n";
        assert_eq!(samples(text, "x").unwrap(), Samples { baseline: vec![1], candidate: vec![] });
        assert_eq!(cpu_times(text), vec![("runx create".to_owned(), 12.5)]);
    }
}
