//! The `fdt` commands that hand Xen its command lines and modules in /chosen:
//! dom0's kernel and ramdisk, and a node for each dom0less guest.

use std::fmt::Write;

use super::config::{BootConfig, DomU};
use super::images::{self, Input, Owner, Slot};

const LINUX_KERNEL: &str = "\"xen,linux-zimage\" \"xen,multiboot-module\" \"multiboot,module\"";
const LINUX_INITRD: &str = "\"xen,linux-initrd\" \"xen,multiboot-module\" \"multiboot,module\"";
const DOMU_KERNEL: &str = "\"multiboot,kernel\" \"multiboot,module\"";
const DOMU_RAMDISK: &str = "\"multiboot,ramdisk\" \"multiboot,module\"";
const DOMU_DTB: &str = "\"multiboot,device-tree\" \"multiboot,module\"";

/// The arguments Xen reads from /chosen, for itself and for dom0.
pub(super) struct CommandLines {
    pub xen: String,
    pub dom0: String,
}

/// The commands for `inputs` at `regions` (address and size, one per input).
pub(super) fn commands(config: &BootConfig, inputs: &[Input], regions: &[(u64, u64)], lines: &CommandLines) -> String {
    let find = |owner, slot| images::find(inputs, owner, slot).map(|i| regions[i]);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "fdt set /chosen \\#address-cells <0x2>");
    let _ = writeln!(w, "fdt set /chosen \\#size-cells <0x2>");
    let _ = writeln!(w, "fdt set /chosen xen,xen-bootargs {}", quote(&lines.xen));
    let _ = writeln!(w, "fdt set /chosen xen,dom0-bootargs {}", quote(&lines.dom0));
    let kernel = find(Owner::Dom0, Slot::Kernel).expect("dom0 kernel is always an input");
    write_module(w, "/chosen", "dom0", LINUX_KERNEL, kernel);
    if let Some(ramdisk) = find(Owner::Dom0, Slot::Ramdisk) {
        write_module(w, "/chosen", "dom0-ramdisk", LINUX_INITRD, ramdisk);
    }
    for (index, domu) in config.domu.iter().enumerate() {
        write_domu(w, domu, |slot| find(Owner::DomU(index), slot));
    }
    out
}

/// A dom0less guest's node: its resources, then its kernel, ramdisk and passthrough tree.
fn write_domu(w: &mut String, domu: &DomU, find: impl Fn(Slot) -> Option<(u64, u64)>) {
    let node = format!("/chosen/{}", domu.name);
    let _ = writeln!(w, "fdt mknod /chosen {}", domu.name);
    let _ = writeln!(w, "fdt set {node} compatible \"xen,domain\"");
    let _ = writeln!(w, "fdt set {node} \\#address-cells <0x2>");
    let _ = writeln!(w, "fdt set {node} \\#size-cells <0x2>");
    let kib = domu.memory_mib * 1024;
    let _ = writeln!(w, "fdt set {node} memory <{:#x} {:#x}>", kib >> 32, kib & 0xffff_ffff);
    let _ = writeln!(w, "fdt set {node} cpus <{:#x}>", domu.vcpus);
    if domu.vpl011 {
        let _ = writeln!(w, "fdt set {node} vpl011");
    }
    for (slot, compatible) in
        [(Slot::GuestKernel, DOMU_KERNEL), (Slot::Ramdisk, DOMU_RAMDISK), (Slot::DeviceTree, DOMU_DTB)]
    {
        if let Some((address, size)) = find(slot) {
            let name = format!("module@{address:x}");
            write_module(w, &node, &name, compatible, (address, size));
            if slot == Slot::GuestKernel && !domu.bootargs.is_empty() {
                let _ = writeln!(w, "fdt set {node}/{name} bootargs {}", quote(&domu.bootargs));
            }
        }
    }
}

/// A module node: where Xen finds one image.
fn write_module(w: &mut String, parent: &str, name: &str, compatible: &str, (address, size): (u64, u64)) {
    let _ = writeln!(w, "fdt mknod {parent} {name}");
    let _ = writeln!(w, "fdt set {parent}/{name} compatible {compatible}");
    let _ = writeln!(w, "fdt set {parent}/{name} reg {}", reg(address, size));
}

/// Quotes a value for u-boot's hush shell inside double quotes.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn reg(address: u64, size: u64) -> String {
    format!("<{:#x} {:#x} {:#x} {:#x}>", address >> 32, address & 0xffff_ffff, size >> 32, size & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_hush() {
        assert_eq!(quote(r#"a "b" $x \y"#), r#""a \"b\" \$x \\y""#);
    }

    #[test]
    fn reg_splits_64_bit_values_into_cells() {
        assert_eq!(reg(0x8_0020_0000, 0x1234), "<0x8 0x200000 0x0 0x1234>");
    }
}
