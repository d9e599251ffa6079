//! The xl settings that both a whole domain config and an admin's fragment carry: where the guest
//! runs (placement) and what hardware it is given (devices). One definition, so that each entry of
//! `keys::KEYS` reaches its field in both under one path.

/// Scheduling and pinning; unset fields are left to xl's defaults.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Physical CPUs the vcpus may run on (`cpus`), e.g. "2-3": pinning for real-time guests.
    pub cpus: Option<String>,
    /// The cpupool (`pool`), and with it the scheduler.
    pub cpupool: Option<String>,
    /// Scheduler weight cap in percent of one CPU (`cap`).
    pub cap: Option<u32>,
    /// Credit scheduler weight relative to other domains (`cpu_weight`).
    pub weight: Option<u32>,
}

/// Hardware assigned to the guest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Devices {
    /// `MFN,NR_PAGES[@GFN]` entries, hexadecimal.
    pub iomem: Vec<String>,
    pub irqs: Vec<u32>,
    /// Host device-tree paths of devices behind an IOMMU.
    pub dtdev: Vec<String>,
    /// The partial device tree describing passed-through devices to the guest.
    pub device_tree: Option<String>,
    /// PCI devices (BDF), x86 and arm64 with a PCI host bridge.
    pub pci: Vec<String>,
    /// A virtual SBSA UART (`vuart = "sbsa_uart"`), arm64 only.
    pub vuart: bool,
}
