//! The xl settings that both a whole domain config and an admin's fragment carry: where the guest
//! runs (placement) and what hardware it is given (devices). One definition, so that a fragment
//! applies to a domain field by field.

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

impl Placement {
    /// `other`'s set fields replace these.
    pub fn apply(&mut self, other: &Placement) {
        replace(&mut self.cpus, &other.cpus);
        replace(&mut self.cpupool, &other.cpupool);
        self.cap = other.cap.or(self.cap);
        self.weight = other.weight.or(self.weight);
    }
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

impl Devices {
    /// Adds `other`'s devices; its device tree, if it names one, replaces this one.
    pub fn apply(&mut self, other: &Devices) {
        self.iomem.extend(other.iomem.iter().cloned());
        self.irqs.extend(other.irqs.iter().copied());
        self.dtdev.extend(other.dtdev.iter().cloned());
        self.pci.extend(other.pci.iter().cloned());
        replace(&mut self.device_tree, &other.device_tree);
        self.vuart |= other.vuart;
    }
}

fn replace(target: &mut Option<String>, value: &Option<String>) {
    if value.is_some() {
        target.clone_from(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_fields_replace_and_lists_add() {
        let mut placement = Placement { cpus: Some("0".into()), cap: Some(50), ..Placement::default() };
        placement.apply(&Placement { cpus: Some("3".into()), weight: Some(512), ..Placement::default() });
        assert_eq!(placement, Placement { cpus: Some("3".into()), cpupool: None, cap: Some(50), weight: Some(512) });

        let mut devices = Devices { irqs: vec![10], device_tree: Some("/a.dtb".into()), ..Devices::default() };
        devices.apply(&Devices { irqs: vec![68], iomem: vec!["0xff110,1".into()], ..Devices::default() });
        assert_eq!((devices.irqs.as_slice(), devices.iomem.as_slice()), (&[10, 68][..], &["0xff110,1".to_owned()][..]));
        assert_eq!(devices.device_tree.as_deref(), Some("/a.dtb"), "an unset device tree keeps the domain's");
        devices.apply(&Devices { device_tree: Some("/b.dtb".into()), vuart: true, ..Devices::default() });
        assert_eq!((devices.device_tree.as_deref(), devices.vuart), (Some("/b.dtb"), true));
    }
}
