//! From a bundle and the host config to what `xl create` gets: the domain config, the kernel,
//! and (when runx-init runs the process) the launch spec and how the rootfs travels.

use std::fs::File;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use runx_launch::MIN_MEMORY_MIB;
use runx_xl::{Action, DomainConfig, GuestType};

use crate::annotations::{AnnotationError, Requests};
use crate::bundle::Bundle;
use crate::confine::{self, ConfineError};
use crate::home;
use crate::host_config::HostConfig;
use crate::launch::{self, Launch, LaunchError};
use crate::network::NetworkNamespace;
use crate::profile::{self, ProfileError};
use crate::vm::{VmConfig, VmError};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("the guest kernel {0} does not exist: install runx's guest kernel there, or set `kernel` in /etc/runx/config.toml")]
    NoKernel(PathBuf),
    #[error("the base initramfs {0} does not exist: install runx-init's initramfs there, or set `initramfs` in /etc/runx/config.toml")]
    NoInitramfs(PathBuf),
    #[error("linux.resources: {0}")]
    Resources(String),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error("config.json has a vm object, which this host does not allow: the admin sets allow_vm_config in /etc/runx/config.toml")]
    VmNotAllowed,
    #[error("config.json's vm.hwConfig hands host devices to the guest (deviceTree, dtdevs, iomems, irqs), which this host does not allow: the admin sets allow_vm_devices = true in /etc/runx/config.toml, or names the devices in a profile")]
    VmDevicesNotAllowed,
    #[error("config.json's vm.kernel and the container's own kernel (io.runx.kernel or RUNX_KERNEL) both name a kernel: drop one")]
    TwoKernels,
}

/// The guest's vif: runx moves its backend into the container's namespace and wires it itself
/// (`network`), so xl's hotplug script is one that does nothing and succeeds. runx-init guests
/// get one by default, containers with their own kernel with `io.runx.network=vif`.
const VIF: &str = "script=/bin/true";

/// What boots in the guest.
pub enum Boot {
    /// The host's guest kernel with runx-init, which runs the container's process.
    Init { initramfs: PathBuf, launch: Box<Launch> },
    /// The container's own kernel (and ramdisk), booted directly; the process args are its
    /// command line. Open inside the rootfs: `create` copies them into the container's folder
    /// and points the domain config at the copies.
    Kernel { kernel: File, ramdisk: Option<File> },
}

pub struct Plan {
    pub domain: DomainConfig,
    pub boot: Boot,
    /// The namespace the monitor lives in; a runx-init guest in one of its own gets a vif.
    pub network: NetworkNamespace,
    /// Memory came from the host default: `initramfs` mode adds the rootfs's size to it.
    pub memory_is_default: bool,
}

fn guest_type() -> GuestType {
    // x86 guests are PV: PVH needs hardware virtualization, which is not always there (QEMU TCG).
    if cfg!(target_arch = "x86_64") {
        GuestType::Pv
    } else {
        GuestType::Pvh
    }
}

/// The `vm` object, if the host honours it.
fn vm_config<'a>(bundle: &'a Bundle, host: &HostConfig) -> Result<Option<&'a VmConfig>, PlanError> {
    match &bundle.vm {
        Some(_) if !host.allow_vm_config => Err(PlanError::VmNotAllowed),
        Some(vm) => {
            vm.check()?;
            Ok(Some(vm))
        }
        None => Ok(None),
    }
}

pub fn plan(bundle: &Bundle, host: &HostConfig, name: &str) -> Result<Plan, PlanError> {
    let process = bundle.process();
    let env = process.env().clone().unwrap_or_default();
    let requests = Requests::parse(&bundle.annotations(), &env, &host.allowed_annotations)?;
    let resources = bundle.spec.linux().as_ref().and_then(|l| l.resources().clone());
    let limits = Limits::from_resources(resources.as_ref())?;
    let vm = vm_config(bundle, host)?;
    let vm_kernel = vm.and_then(|vm| vm.kernel.as_ref());
    // What the admin adds, in order: vm.hwConfig, then each profile.
    let mut admin = Vec::new();
    if let Some(hw) = vm.and_then(|vm| vm.hw_config.as_ref()) {
        if hw.assigns_devices() && !host.allow_vm_devices {
            return Err(PlanError::VmDevicesNotAllowed);
        }
        admin.push(hw.fragment()?);
    }
    for name in &requests.profiles {
        admin.push(profile::load(host, name)?);
    }

    let (kernel, boot) = match &requests.kernel {
        Some(_) if vm_kernel.is_some() => return Err(PlanError::TwoKernels),
        Some(path) => {
            let kernel = confine::regular_file(&bundle.rootfs, path, "container kernel")?;
            let ramdisk = match &requests.ramdisk {
                Some(path) => Some(confine::regular_file(&bundle.rootfs, path, "container ramdisk")?),
                None => None,
            };
            // Named once `create` has copied it.
            (String::new(), Boot::Kernel { kernel, ramdisk })
        }
        None => {
            let kernel = vm_kernel.map_or(&host.kernel, |k| &k.path);
            let initramfs = vm_kernel.and_then(|k| k.initrd.as_ref()).unwrap_or(&host.initramfs);
            if !kernel.is_file() {
                return Err(PlanError::NoKernel(kernel.clone()));
            }
            if !initramfs.is_file() {
                return Err(PlanError::NoInitramfs(initramfs.clone()));
            }
            let mode = requests.rootfs.unwrap_or(host.rootfs);
            let readonly = bundle.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
            let mut launch = launch::from_oci(&bundle.spec, launch::rootfs(mode, readonly))?;
            let uid = launch.spec.process.user.uid;
            home::add_home(&mut launch.spec.process.env, &bundle.rootfs, uid);
            (
                kernel.to_string_lossy().into_owned(),
                Boot::Init { initramfs: initramfs.clone(), launch: Box::new(launch) },
            )
        }
    };

    let memory_mib = limits.memory_mib.or(requests.memory_mib);
    let vcpus = limits.vcpus.or(requests.vcpus).unwrap_or(host.vcpus);
    let mut domain = DomainConfig::new(name, guest_type(), &kernel, memory_mib.unwrap_or(host.memory_mib), vcpus);
    if cfg!(target_arch = "aarch64") {
        // Said outright, though off is arm64's default: libxl's `mem-set` (runx update) reads
        // the stored setting and asserts on one left at the default (Xen 4.17).
        domain.acpi = Some(false);
    }
    domain.placement.cap = limits.cap;
    domain.placement.cpus = limits.cpus;
    domain.cmdline = Some(match &boot {
        Boot::Init { .. } => init_cmdline(&vm_kernel.map_or_else(|| host.cmdline.clone(), |k| k.parameters.join(" "))),
        Boot::Kernel { .. } => process.args().clone().unwrap_or_default().join(" "),
    });
    // Keep the domain when it ends, so that the monitor reads how it ended before destroying it.
    domain.on_poweroff = Some(Action::Preserve);
    domain.on_reboot = Some(Action::Preserve);
    domain.on_crash = Some(Action::Preserve);
    domain.on_watchdog = Some(Action::Preserve);
    for fragment in &admin {
        domain.apply(fragment);
    }
    let memory_is_default = memory_mib.is_none() && admin.iter().all(|f| f.memory_mib.is_none());
    let network = NetworkNamespace::of(&bundle.spec);
    let wants_vif = requests.vif.unwrap_or(matches!(boot, Boot::Init { .. }));
    if network != NetworkNamespace::Host && wants_vif {
        domain.vifs.push(VIF.to_owned());
    }
    Ok(Plan { domain, boot, network, memory_is_default })
}

/// A runx-init guest's command line: the admin's, with the rootfs made a ramfs (unless the
/// admin chose its type), so that a root carried in RAM may use all of it (`guest_memory`).
fn init_cmdline(base: &str) -> String {
    if base.split_whitespace().any(|word| word.starts_with("rootfstype=")) {
        base.to_owned()
    } else {
        format!("{base} rootfstype=ramfs").trim_start().to_owned()
    }
}

/// What `linux.resources` asks of the guest.
/// `runx update` reads them the same way.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
    /// Percent of one CPU, from quota/period.
    pub cap: Option<u32>,
    pub cpus: Option<String>,
}

impl Limits {
    pub(crate) fn from_resources(resources: Option<&LinuxResources>) -> Result<Self, PlanError> {
        let mut limits = Limits::default();
        let Some(resources) = resources else { return Ok(limits) };
        if let Some(limit) = resources.memory().as_ref().and_then(|m| m.limit()).filter(|&l| l > 0) {
            let mib = (limit as u64).div_ceil(1 << 20);
            if mib < MIN_MEMORY_MIB {
                return Err(PlanError::Resources(format!(
                    "memory limit {limit} bytes is below the {MIN_MEMORY_MIB} MiB a runx guest needs"
                )));
            }
            limits.memory_mib = Some(mib);
        }
        if let Some(cpu) = resources.cpu() {
            if let (Some(quota), Some(period)) = (cpu.quota().filter(|&q| q > 0), cpu.period().filter(|&p| p > 0)) {
                let quota = quota as u64;
                let too_big = || {
                    PlanError::Resources(format!(
                        "cpu quota {quota} over period {period} asks for more CPUs than a guest can have: \
                         give a quota of at most {} times the period",
                        u32::MAX / 100
                    ))
                };
                let vcpus = u32::try_from(quota.div_ceil(period).max(1)).map_err(|_| too_big())?;
                let cap = quota.checked_mul(100).map(|q| q.div_ceil(period)).and_then(|c| u32::try_from(c).ok());
                limits.vcpus = Some(vcpus);
                limits.cap = Some(cap.ok_or_else(too_big)?);
            }
            limits.cpus = cpu.cpus().clone().filter(|c| !c.is_empty());
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn resources_become_memory_vcpus_cap_and_pinning() {
        let r = resources(r#"{"memory":{"limit":100663296},"cpu":{"quota":150000,"period":100000,"cpus":"2-3"}}"#);
        let limits = Limits::from_resources(Some(&r)).unwrap();
        assert_eq!(limits, Limits { memory_mib: Some(96), vcpus: Some(2), cap: Some(150), cpus: Some("2-3".into()) });
        assert_eq!(Limits::from_resources(None).unwrap(), Limits::default());
        let unlimited = resources(r#"{"memory":{"limit":-1},"cpu":{"quota":-1,"period":100000}}"#);
        assert_eq!(Limits::from_resources(Some(&unlimited)).unwrap(), Limits::default());
    }

    #[test]
    fn a_huge_cpu_quota_is_refused_not_overflowed() {
        let r = resources(&format!(r#"{{"cpu":{{"quota":{},"period":100000}}}}"#, i64::MAX));
        let err = Limits::from_resources(Some(&r)).unwrap_err().to_string();
        assert!(err.contains(&format!("cpu quota {} over period 100000", i64::MAX)), "{err}");
        // No overflow in u64, but more vcpus than a guest's count holds.
        let r = resources(r#"{"cpu":{"quota":4294967296,"period":1}}"#);
        assert!(Limits::from_resources(Some(&r)).is_err());
    }

    /// A bundle in a namespace of its own, with `annotations`; plans it.
    fn plan_with(tag: &str, annotations: &str) -> Plan {
        let dir = std::env::temp_dir().join(format!("runx-plan-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs/boot")).unwrap();
        std::fs::write(dir.join("rootfs/boot/k"), b"kernel").unwrap();
        std::fs::write(dir.join("kernel"), b"kernel").unwrap();
        std::fs::write(dir.join("initramfs.cpio"), b"").unwrap();
        let config = format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"annotations":{annotations},
            "process":{{"args":["/bin/app"],"cwd":"/","user":{{"uid":0,"gid":0}}}},
            "linux":{{"namespaces":[{{"type":"network"}}]}}}}"#
        );
        std::fs::write(dir.join("config.json"), config).unwrap();
        let host =
            HostConfig { kernel: dir.join("kernel"), initramfs: dir.join("initramfs.cpio"), ..HostConfig::default() };
        let plan = plan(&Bundle::load(&dir).unwrap(), &host, "guest");
        std::fs::remove_dir_all(&dir).unwrap();
        plan.unwrap()
    }

    #[test]
    fn a_guest_in_a_namespace_gets_a_vif_as_its_kind_or_annotation_says() {
        assert_eq!(plan_with("init", "{}").domain.vifs, [VIF]);
        assert!(plan_with("none", r#"{"io.runx.network":"none"}"#).domain.vifs.is_empty());
        assert!(plan_with("kernel", r#"{"io.runx.kernel":"/boot/k"}"#).domain.vifs.is_empty());
        let asked = plan_with("kernelvif", r#"{"io.runx.kernel":"/boot/k","io.runx.network":"vif"}"#);
        assert_eq!(asked.domain.vifs, [VIF]);
    }

    #[test]
    fn a_runx_init_guest_unpacks_its_root_into_a_ramfs() {
        assert_eq!(init_cmdline("console=hvc0 quiet"), "console=hvc0 quiet rootfstype=ramfs");
        assert_eq!(init_cmdline(""), "rootfstype=ramfs");
        assert_eq!(init_cmdline("console=hvc0 rootfstype=tmpfs"), "console=hvc0 rootfstype=tmpfs");
    }

    #[test]
    fn a_tiny_memory_limit_is_refused() {
        let r = resources(r#"{"memory":{"limit":4194304}}"#);
        let err = Limits::from_resources(Some(&r)).unwrap_err().to_string();
        assert!(err.contains("below the 16 MiB"), "{err}");
    }
}
