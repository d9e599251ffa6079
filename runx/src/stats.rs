//! `runx events`' JSON: runc's shape (its `types/events.go`), filled with what Xen counts for
//! the container's domain. What a guest has no counterpart for (cgroup throttling, cpusets,
//! block I/O, hugetlb, RDT, the process count inside the guest) is left at its empty value, as
//! runc leaves what a cgroup does not report.

use serde::Serialize;

use crate::network::Counters;
use crate::xen::DomainUsage;

/// One line of `runx events`.
#[derive(Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    pub data: Stats,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: Empty,
    pub memory: Memory,
    pub pids: Empty,
    pub blkio: Empty,
    pub hugetlb: Empty,
    pub intel_rdt: Empty,
    /// null without a vif, as runc prints a container without interfaces.
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Empty,
}

/// Nanoseconds. Xen counts a vcpu's time without splitting it into the guest's kernel and user
/// time: both stay 0, as runc's do where the cgroup does not split them.
#[derive(Debug, Serialize)]
pub struct CpuUsage {
    pub total: u64,
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Serialize)]
pub struct Memory {
    pub usage: MemoryEntry,
}

/// Bytes: the domain's memory now, and its maximum as the limit.
#[derive(Debug, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    pub usage: u64,
    pub failcnt: u64,
}

/// runc writes these with Go's field names: no JSON tags on its struct (`Counters` follows).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub name: String,
    #[serde(flatten)]
    pub counters: Counters,
}

impl Stats {
    /// `interface`: the guest's interface name and its counters, when it has a vif.
    pub fn new(usage: &DomainUsage, interface: Option<(String, Counters)>) -> Self {
        Stats {
            cpu: Cpu {
                usage: CpuUsage {
                    total: usage.vcpu_time_ns.iter().sum(),
                    percpu: usage.vcpu_time_ns.clone(),
                    kernel: 0,
                    user: 0,
                },
                throttling: Empty {},
            },
            cpuset: Empty {},
            memory: Memory {
                usage: MemoryEntry { limit: usage.max_memory_kib << 10, usage: usage.memory_kib << 10, failcnt: 0 },
            },
            pids: Empty {},
            blkio: Empty {},
            hugetlb: Empty {},
            intel_rdt: Empty {},
            network_interfaces: interface.map(|(name, counters)| vec![NetworkInterface { name, counters }]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_runcs_shape() {
        let usage = DomainUsage {
            vcpu_time_ns: vec![2_500_000_000, 900_000_000],
            vcpus_online: 1,
            memory_kib: 200 << 10,
            max_memory_kib: 256 << 10,
        };
        let counters = Counters { rx_bytes: 34000, tx_bytes: 1200, ..Counters::default() };
        let event = Event { kind: "stats", id: "web", data: Stats::new(&usage, Some(("eth0".into(), counters))) };
        let json: serde_json::Value = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], "stats");
        assert_eq!(json["id"], "web");
        assert_eq!(json["data"]["cpu"]["usage"]["total"], 3_400_000_000u64);
        assert_eq!(json["data"]["cpu"]["usage"]["percpu"], serde_json::json!([2_500_000_000u64, 900_000_000u64]));
        assert_eq!(json["data"]["memory"]["usage"]["usage"], 200u64 << 20);
        assert_eq!(json["data"]["memory"]["usage"]["limit"], 256u64 << 20);
        assert_eq!(json["data"]["network_interfaces"][0]["Name"], "eth0");
        assert_eq!(json["data"]["network_interfaces"][0]["RxBytes"], 34000);
        assert_eq!(json["data"]["network_interfaces"][0]["TxBytes"], 1200);
        let keys: Vec<&str> =
            json["data"]["network_interfaces"][0].as_object().unwrap().keys().map(String::as_str).collect();
        for key in
            ["Name", "RxBytes", "RxPackets", "RxErrors", "RxDropped", "TxBytes", "TxPackets", "TxErrors", "TxDropped"]
        {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let alone = serde_json::to_value(Stats::new(&usage, None)).unwrap();
        assert!(alone["network_interfaces"].is_null());
    }
}
