use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::Global;

/// runc's flags; those a guest has no counterpart for are refused by `runx::update` by name.
#[derive(clap::Args)]
pub struct Args {
    /// linux.resources as JSON (runtime-spec), or `-` for stdin: containerd's way.
    #[arg(long, short)]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or with a k, m, g suffix): the guest's memory, within its maximum.
    #[arg(long)]
    memory: Option<String>,
    #[arg(long)]
    memory_swap: Option<String>,
    #[arg(long)]
    memory_reservation: Option<String>,
    #[arg(long)]
    kernel_memory: Option<String>,
    #[arg(long)]
    kernel_memory_tcp: Option<String>,
    /// CPU period (µs) for --cpu-quota.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPU quota (µs per period): online vcpus and the scheduler's cap; -1 removes the cap.
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_share: Option<u64>,
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    #[arg(long)]
    cpu_rt_runtime: Option<i64>,
    /// Physical CPUs the vcpus may run on (e.g. 0-2,4).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    cpuset_mems: Option<String>,
    #[arg(long)]
    blkio_weight: Option<u16>,
    #[arg(long)]
    pids_limit: Option<i64>,
    #[arg(long)]
    l3_cache_schema: Option<String>,
    #[arg(long)]
    mem_bw_schema: Option<String>,
    id: String,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let resources = match &args.resources {
        Some(path) => read_resources(path)?,
        None => from_flags(&args)?,
    };
    global.cleanup_runtime()?.update(&args.id, &resources)?;
    Ok(())
}

fn read_resources(path: &PathBuf) -> Result<LinuxResources> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("cannot read the resources from stdin")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    serde_json::from_str(&text).with_context(|| format!("{}: not linux.resources JSON", path.display()))
}

/// The flags as linux.resources, as runc builds them.
fn from_flags(args: &Args) -> Result<LinuxResources> {
    if args.l3_cache_schema.is_some() || args.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema and --mem-bw-schema: Intel RDT has no counterpart in a Xen guest, so runx cannot change it");
    }
    let mut memory = Map::new();
    for (key, flag) in [
        ("limit", &args.memory),
        ("swap", &args.memory_swap),
        ("reservation", &args.memory_reservation),
        ("kernel", &args.kernel_memory),
        ("kernelTCP", &args.kernel_memory_tcp),
    ] {
        if let Some(text) = flag {
            memory.insert(key.into(), json!(parse_bytes(text)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            cpu.insert(key.into(), value);
        }
    };
    put("period", args.cpu_period.map(Value::from));
    put("quota", args.cpu_quota.map(Value::from));
    put("shares", args.cpu_share.map(Value::from));
    put("realtimePeriod", args.cpu_rt_period.map(Value::from));
    put("realtimeRuntime", args.cpu_rt_runtime.map(Value::from));
    put("cpus", args.cpuset_cpus.clone().map(Value::from));
    put("mems", args.cpuset_mems.clone().map(Value::from));
    let mut resources = Map::new();
    if !memory.is_empty() {
        resources.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(weight) = args.blkio_weight {
        resources.insert("blockIO".into(), json!({ "weight": weight }));
    }
    if let Some(limit) = args.pids_limit {
        resources.insert("pids".into(), json!({ "limit": limit }));
    }
    Ok(serde_json::from_value(Value::Object(resources))?)
}

/// A size as runc reads one (binary multiples): `67108864`, `64m`, `64MiB`, `1.5g`; -1 for
/// unlimited.
fn parse_bytes(text: &str) -> Result<i64> {
    if text == "-1" {
        return Ok(-1);
    }
    let lower = text.to_ascii_lowercase();
    let unit_at = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (number, unit) = lower.split_at(unit_at);
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => bail!("size {text:?}: use bytes or a k, m, g or t suffix (e.g. 128m)"),
    };
    let value: f64 = number.parse().map_err(|_| anyhow::anyhow!("size {text:?}: {number:?} is not a number"))?;
    Ok((value * (1u64 << shift) as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sizes_as_runc_does() {
        assert_eq!(parse_bytes("67108864").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("64x").is_err());
        assert!(parse_bytes("m").is_err());
    }
}
