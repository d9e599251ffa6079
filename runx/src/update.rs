//! What `runx update` asks of a running domain: `linux.resources` read as `create` reads them
//! (memory limit -> the guest's memory, cpu quota/period -> online vcpus and the scheduler's
//! cap, cpus -> pinning), within what the domain was created with. A setting a guest has no
//! counterpart for is refused by name rather than ignored; the ones `create` also passes over
//! (cpu shares, the device allow-list, a swap limit a guest without swap cannot exceed, zero
//! hugepage limits), which engines send with every update, are accepted.

use crate::plan::{Limits, PlanError};
use crate::xen::{Adjustment, DomainUsage};
use oci_spec::runtime::LinuxResources;

/// runc's period when an update gives a quota alone.
const DEFAULT_CPU_PERIOD: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Resources(#[from] PlanError),
    #[error(
        "memory {asked} MiB is over the {max} MiB the domain was created with: a guest cannot grow past \
         its maximum; recreate the container with the larger limit"
    )]
    MemoryOverMax { asked: u64, max: u64 },
    #[error(
        "{asked} vcpus is over the {max} the domain was created with: a guest cannot have more vcpus than \
         at create; recreate the container with the larger cpu quota"
    )]
    VcpusOverMax { asked: u32, max: u32 },
    #[error("{0}: a Xen guest has no counterpart for it, so runx cannot change it (runx update changes memory, cpu quota/period and cpus)")]
    Unsupported(&'static str),
    #[error("nothing to update: give --memory, --cpu-quota/--cpu-period, --cpuset-cpus or --resources")]
    Nothing,
}

/// The changes, in the order to make them, for a domain using `usage` now.
pub fn adjustments(resources: &LinuxResources, usage: &DomainUsage) -> Result<Vec<Adjustment>, UpdateError> {
    refuse_unsupported(resources)?;
    let max_vcpus = usage.vcpu_time_ns.len() as u32;
    let mut resources = resources.clone();
    let mut uncapped = false;
    if let Some(cpu) = resources.cpu().clone() {
        match (cpu.quota(), cpu.period()) {
            (Some(q), _) if q < 0 => uncapped = true,
            (Some(q), None) if q > 0 => {
                resources.set_cpu(Some(cpu.clone().set_period(Some(DEFAULT_CPU_PERIOD)).clone()));
            }
            _ => {}
        }
    }
    let limits = Limits::from_resources(Some(&resources))?;
    let mut changes = Vec::new();
    if let Some(mib) = limits.memory_mib {
        let max = usage.max_memory_kib >> 10;
        if mib > max {
            return Err(UpdateError::MemoryOverMax { asked: mib, max });
        }
        changes.push(Adjustment::MemoryMib(mib));
    }
    if uncapped {
        changes.push(Adjustment::Vcpus(max_vcpus));
        changes.push(Adjustment::CapPercent(0));
    } else if let (Some(vcpus), Some(cap)) = (limits.vcpus, limits.cap) {
        if vcpus > max_vcpus {
            return Err(UpdateError::VcpusOverMax { asked: vcpus, max: max_vcpus });
        }
        changes.push(Adjustment::Vcpus(vcpus));
        changes.push(Adjustment::CapPercent(cap));
    }
    if let Some(cpus) = limits.cpus {
        changes.push(Adjustment::Pin(cpus));
    }
    if changes.is_empty() {
        return Err(UpdateError::Nothing);
    }
    Ok(changes)
}

fn refuse_unsupported(r: &LinuxResources) -> Result<(), UpdateError> {
    let set = |v: Option<i64>| v.map_or(false, |v| v > 0);
    if let Some(m) = r.memory() {
        if set(m.reservation()) {
            return Err(UpdateError::Unsupported("memory.reservation"));
        }
        if set(m.kernel()) || set(m.kernel_tcp()) {
            return Err(UpdateError::Unsupported("memory.kernel"));
        }
        if m.swappiness().is_some() {
            return Err(UpdateError::Unsupported("memory.swappiness"));
        }
    }
    if let Some(c) = r.cpu() {
        if set(c.realtime_runtime()) || c.realtime_period().map_or(false, |p| p > 0) {
            return Err(UpdateError::Unsupported("cpu.realtimeRuntime/realtimePeriod"));
        }
        if c.mems().as_ref().map_or(false, |m| !m.is_empty()) {
            return Err(UpdateError::Unsupported("cpu.mems"));
        }
    }
    if r.pids().as_ref().map_or(false, |p| p.limit() > 0) {
        return Err(UpdateError::Unsupported("pids.limit"));
    }
    if let Some(b) = r.block_io() {
        let throttles = [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ];
        if b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().map_or(false, |d| !d.is_empty())
            || throttles.iter().any(|d| d.as_ref().map_or(false, |d| !d.is_empty()))
        {
            return Err(UpdateError::Unsupported("blockIO"));
        }
    }
    if r.hugepage_limits().as_ref().map_or(false, |h| h.iter().any(|l| l.limit() > 0)) {
        return Err(UpdateError::Unsupported("hugepageLimits"));
    }
    if r.unified().as_ref().map_or(false, |u| !u.is_empty()) {
        return Err(UpdateError::Unsupported("unified"));
    }
    if r.network().is_some() {
        return Err(UpdateError::Unsupported("network (classID, priorities)"));
    }
    if r.rdma().as_ref().map_or(false, |d| !d.is_empty()) {
        return Err(UpdateError::Unsupported("rdma"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> DomainUsage {
        DomainUsage { vcpu_time_ns: vec![0; 4], vcpus_online: 2, memory_kib: 256 << 10, max_memory_kib: 256 << 10 }
    }

    fn update(json: &str) -> Result<Vec<Adjustment>, UpdateError> {
        adjustments(&serde_json::from_str(json).unwrap(), &usage())
    }

    #[test]
    fn memory_quota_and_cpus_become_xen_changes() {
        let changes =
            update(r#"{"memory":{"limit":134217728},"cpu":{"quota":150000,"period":100000,"cpus":"1-2"}}"#).unwrap();
        assert_eq!(
            changes,
            [
                Adjustment::MemoryMib(128),
                Adjustment::Vcpus(2),
                Adjustment::CapPercent(150),
                Adjustment::Pin("1-2".into())
            ]
        );
        assert_eq!(update(r#"{"cpu":{"quota":250000}}"#).unwrap(), [Adjustment::Vcpus(3), Adjustment::CapPercent(250)]);
        assert_eq!(update(r#"{"cpu":{"quota":-1}}"#).unwrap(), [Adjustment::Vcpus(4), Adjustment::CapPercent(0)]);
    }

    #[test]
    fn what_engines_send_with_every_update_is_accepted() {
        // containerd's CRI plugin sends the container's whole resources: shares, the device
        // list, swap equal to the limit, zero hugepage limits.
        let cri = r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":67108864,"swap":67108864},
            "cpu":{"shares":2,"quota":0,"period":100000},"hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#;
        assert_eq!(update(cri).unwrap(), [Adjustment::MemoryMib(64)]);
    }

    #[test]
    fn beyond_the_domains_maximum_is_refused_with_the_fix() {
        let err = update(r#"{"memory":{"limit":536870912}}"#).unwrap_err().to_string();
        assert!(err.contains("512 MiB is over the 256 MiB") && err.contains("recreate"), "{err}");
        let err = update(r#"{"cpu":{"quota":500000,"period":100000}}"#).unwrap_err().to_string();
        assert!(err.contains("5 vcpus is over the 4"), "{err}");
        let err = update(r#"{"memory":{"limit":1048576}}"#).unwrap_err().to_string();
        assert!(err.contains("below the"), "{err}");
    }

    #[test]
    fn what_a_guest_cannot_do_is_named() {
        for (json, name) in [
            (r#"{"pids":{"limit":100}}"#, "pids.limit"),
            (r#"{"memory":{"reservation":1048576}}"#, "memory.reservation"),
            (r#"{"blockIO":{"weight":100}}"#, "blockIO"),
            (r#"{"cpu":{"mems":"0"}}"#, "cpu.mems"),
            (r#"{"unified":{"memory.high":"1"}}"#, "unified"),
        ] {
            let err = update(json).unwrap_err().to_string();
            assert!(err.starts_with(name) && err.contains("runx update changes"), "{json}: {err}");
        }
        assert!(matches!(update("{}"), Err(UpdateError::Nothing)));
    }
}
