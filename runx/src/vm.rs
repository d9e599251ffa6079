//! config.json's `vm` object (OCI runtime-spec 1.3, "Virtual-machine-specific Container
//! Configuration"), read from the raw JSON because oci-spec 0.7 has no model of it. It is
//! written by whoever runs runx (containerd's client, an orchestrator), never by an image:
//! `kernel` replaces the host's guest kernel, `hwConfig` assigns devices and sizes the guest.

use std::path::{Path, PathBuf};

use runx_launch::MIN_MEMORY_MIB;
use runx_xl::fragment::Fragment;
use serde::Deserialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VmError {
    #[error("vm.{field}: {path} {why}")]
    Path { field: &'static str, path: PathBuf, why: &'static str },
    #[error("vm.hwConfig.memory: {0} bytes is below the {MIN_MEMORY_MIB} MiB a runx guest needs")]
    Memory(u64),
    #[error("vm.hwConfig.{field}: {why}")]
    Invalid { field: &'static str, why: &'static str },
    #[error("vm.image is not supported: runx takes the container's root from root.path; drop vm.image")]
    Image,
}

/// The parts of the `vm` object runx uses; `hypervisor` is accepted and ignored (the
/// hypervisor is Xen, driven through xl).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmConfig {
    #[serde(default)]
    hypervisor: Option<serde_json::Value>,
    #[serde(default)]
    pub kernel: Option<VmKernel>,
    #[serde(default)]
    image: Option<serde_json::Value>,
    #[serde(default)]
    pub hw_config: Option<HwConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmKernel {
    pub path: PathBuf,
    #[serde(default)]
    pub parameters: Vec<String>,
    #[serde(default)]
    pub initrd: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HwConfig {
    #[serde(default)]
    pub device_tree: Option<PathBuf>,
    #[serde(default)]
    pub vcpus: Option<u32>,
    /// Bytes.
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub dtdevs: Vec<String>,
    #[serde(default)]
    pub iomems: Vec<IoMem>,
    #[serde(default)]
    pub irqs: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoMem {
    #[serde(rename = "firstGFN", default)]
    pub first_gfn: Option<u64>,
    #[serde(rename = "firstMFN")]
    pub first_mfn: u64,
    #[serde(rename = "nrMFNs")]
    pub nr_mfns: u64,
}

/// A host path the admin named: absolute and a regular file.
fn host_file(field: &'static str, path: &Path) -> Result<PathBuf, VmError> {
    let why = if !path.is_absolute() {
        "is not an absolute path: vm paths are host paths"
    } else if !path.is_file() {
        "is not a file on this host"
    } else {
        return Ok(path.to_owned());
    };
    Err(VmError::Path { field, path: path.to_owned(), why })
}

impl VmConfig {
    /// Checks what runx cannot honour.
    pub fn check(&self) -> Result<(), VmError> {
        if self.image.is_some() {
            return Err(VmError::Image);
        }
        if let Some(kernel) = &self.kernel {
            host_file("kernel.path", &kernel.path)?;
            if let Some(initrd) = &kernel.initrd {
                host_file("kernel.initrd", initrd)?;
            }
        }
        Ok(())
    }
}

impl HwConfig {
    /// Whether it hands host devices to the guest (anything beyond memory and vcpus).
    pub fn assigns_devices(&self) -> bool {
        self.device_tree.is_some() || !self.dtdevs.is_empty() || !self.iomems.is_empty() || !self.irqs.is_empty()
    }

    /// The xl settings it stands for.
    pub fn fragment(&self) -> Result<Fragment, VmError> {
        let mut fragment = Fragment::default();
        if let Some(bytes) = self.memory {
            let mib = bytes.div_ceil(1 << 20);
            if mib < MIN_MEMORY_MIB {
                return Err(VmError::Memory(bytes));
            }
            fragment.memory_mib = Some(mib);
        }
        if self.vcpus == Some(0) {
            return Err(VmError::Invalid { field: "vcpus", why: "a guest needs at least 1" });
        }
        fragment.vcpus = self.vcpus;
        if let Some(tree) = &self.device_tree {
            let tree = host_file("hwConfig.deviceTree", tree)?;
            fragment.devices.device_tree = Some(tree.to_string_lossy().into_owned());
        }
        fragment.devices.dtdev.clone_from(&self.dtdevs);
        for iomem in &self.iomems {
            if iomem.nr_mfns == 0 {
                return Err(VmError::Invalid { field: "iomems", why: "nrMFNs must be at least 1" });
            }
            let mut entry = format!("{:#x},{:#x}", iomem.first_mfn, iomem.nr_mfns);
            if let Some(gfn) = iomem.first_gfn {
                entry.push_str(&format!("@{gfn:#x}"));
            }
            fragment.devices.iomem.push(entry);
        }
        fragment.devices.irqs.clone_from(&self.irqs);
        Ok(fragment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of runtime-spec's config-vm.md, with a device tree that exists.
    fn spec_example(tree: &Path) -> String {
        format!(
            r#"{{"ociVersion":"1.3.0","process":{{"args":["app"]}},"vm":{{"hypervisor":{{"path":"/usr/sbin/xl"}},
            "hwConfig":{{"deviceTree":"{}","vcpus":1,"memory":33554432,"dtdevs":["path/to/dev1_node","path/to/dev2_node"],
            "iomems":[{{"firstMFN":12288,"nrMFNs":1}},{{"firstGFN":12544,"firstMFN":33024,"nrMFNs":2}}],"irqs":[11,22]}}}}}}"#,
            tree.display()
        )
    }

    #[test]
    fn hw_config_renders_into_the_xl_config() {
        let tree = std::env::temp_dir().join(format!("runx-vm-{}.dtb", std::process::id()));
        std::fs::write(&tree, b"\xd0\x0d\xfe\xed").unwrap();
        let config: serde_json::Value = serde_json::from_str(&spec_example(&tree)).unwrap();
        let vm: VmConfig = serde_json::from_value(config["vm"].clone()).unwrap();
        vm.check().unwrap();
        let hw = vm.hw_config.unwrap();
        assert!(hw.assigns_devices());
        assert!(!serde_json::from_str::<HwConfig>(r#"{"vcpus":2,"memory":33554432}"#).unwrap().assigns_devices());
        let fragment = hw.fragment().unwrap();
        let mut cfg = runx_xl::DomainConfig::new("dev", runx_xl::GuestType::Pvh, "/k", 64, 2);
        cfg.apply(&fragment);
        let text = cfg.render().unwrap();
        for line in [
            "memory = 32\n".to_owned(),
            "vcpus = 1\n".to_owned(),
            format!("device_tree = \"{}\"\n", tree.display()),
            "dtdev = [ \"path/to/dev1_node\", \"path/to/dev2_node\" ]\n".to_owned(),
            "iomem = [ \"0x3000,0x1\", \"0x8100,0x2@0x3100\" ]\n".to_owned(),
            "irqs = [ 11, 22 ]\n".to_owned(),
        ] {
            assert!(text.contains(&line), "{line:?} not in {text}");
        }
        std::fs::remove_file(tree).unwrap();
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let parse = |json: &str| serde_json::from_str::<VmConfig>(json);
        assert!(parse(r#"{"hwConfig":{"iomem":[]}}"#).unwrap_err().to_string().contains("unknown field `iomem`"));
        let vm = parse(r#"{"image":{"path":"/img","format":"raw"}}"#).unwrap();
        assert_eq!(vm.check(), Err(VmError::Image));
        let vm = parse(r#"{"kernel":{"path":"vmlinuz"}}"#).unwrap();
        assert!(vm.check().unwrap_err().to_string().contains("not an absolute path"));
        let hw = |json: &str| serde_json::from_str::<HwConfig>(json).unwrap().fragment();
        assert_eq!(hw(r#"{"memory":1048576}"#), Err(VmError::Memory(1048576)));
        assert!(hw(r#"{"deviceTree":"/nonexistent/guest.dtb"}"#).unwrap_err().to_string().contains("not a file"));
        assert!(hw(r#"{"iomems":[{"firstMFN":1,"nrMFNs":0}]}"#).is_err());
        assert!(hw(r#"{"vcpus":0}"#).is_err());
    }
}
