//! Preparing the guest before the process starts: the kernel's file systems,
//! the container's root for its rootfs mode, and the spec's mounts in their order.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use runx_launch::{LaunchSpec, Mount, RootfsMode, INITRAMFS_ROOT};

use crate::Failure;

/// Where a disk-mode root is mounted.
const DISK_ROOT: &str = "/runx/disk";

fn mount_fs(source: &str, target: &Path, fstype: &str, flags: MsFlags, data: Option<&str>) -> Result<(), Failure> {
    mount(Some(source), target, Some(fstype), flags, data)
        .map_err(|e| Failure::sys(&format!("cannot mount {fstype} on {}", target.display()), e))
}

fn ensure_dir(path: &Path) -> Result<(), Failure> {
    if path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path).map_err(|e| {
        Failure::setup(format!(
            "cannot create {} in the container's root ({e}): add the folder to the image",
            path.display()
        ))
    })
}

/// proc, sys and dev for runx-init itself, in the initramfs.
pub fn kernel_filesystems() -> Result<(), Failure> {
    for (fstype, target) in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")] {
        ensure_dir(Path::new(target))?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        mount_fs(fstype, Path::new(target), fstype, flags, None)?;
    }
    // Kernel messages stay off the console the container's output goes to.
    let _ = fs::write("/proc/sys/kernel/printk", "1");
    Ok(())
}

/// Option words of mount(8) that are flags, those that set the mount's propagation (which
/// mount(2) takes only in a call of their own: with other flags it fails with EINVAL), and the
/// rest, passed to the file system as data.
fn mount_options(options: &[String]) -> (MsFlags, MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        let rec = MsFlags::MS_REC;
        let propagates = match option.as_str() {
            "shared" => MsFlags::MS_SHARED,
            "rshared" => MsFlags::MS_SHARED | rec,
            "private" => MsFlags::MS_PRIVATE,
            "rprivate" => MsFlags::MS_PRIVATE | rec,
            "slave" => MsFlags::MS_SLAVE,
            "rslave" => MsFlags::MS_SLAVE | rec,
            "unbindable" => MsFlags::MS_UNBINDABLE,
            "runbindable" => MsFlags::MS_UNBINDABLE | rec,
            _ => MsFlags::empty(),
        };
        if !propagates.is_empty() {
            propagation |= propagates;
            continue;
        }
        let flag = match option.as_str() {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "relatime" => MsFlags::MS_RELATIME,
            "noatime" => MsFlags::MS_NOATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            "rw" | "defaults" | "suid" | "dev" | "exec" => MsFlags::empty(),
            other => {
                data.push(other.to_owned());
                MsFlags::empty()
            }
        };
        flags |= flag;
    }
    (flags, propagation, data.join(","))
}

/// Sets a mount's propagation, if its options name one (source and type are ignored then).
fn propagate(target: &Path, propagation: MsFlags) -> Result<(), Failure> {
    if propagation.is_empty() {
        return Ok(());
    }
    mount_fs("none", target, "propagation", propagation, None)
}

/// Binds a share (checked: under SHARES_DIR) onto `target`, read-only when the options say `ro`.
fn bind_share(target: &Path, m: &Mount) -> Result<(), Failure> {
    let source = Path::new(&m.source);
    if source.is_dir() {
        ensure_dir(target)?;
    } else if !target.exists() {
        ensure_dir(target.parent().unwrap_or(Path::new("/")))?;
        fs::write(target, b"").map_err(|e| Failure::setup(format!("cannot create {}: {e}", target.display())))?;
    }
    let bind_err = |e| Failure::sys(&format!("cannot bind {} on {}", m.source, target.display()), e);
    mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).map_err(bind_err)?;
    let (flags, propagation, _) = mount_options(&m.options);
    if !flags.is_empty() {
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
        mount(None::<&str>, target, None::<&str>, remount, None::<&str>).map_err(bind_err)?;
    }
    propagate(target, propagation)
}

fn spec_mount(root: &Path, m: &Mount) -> Result<(), Failure> {
    let target = root.join(m.destination.trim_start_matches('/'));
    if m.fstype == "bind" {
        return bind_share(&target, m);
    }
    ensure_dir(&target)?;
    let (flags, propagation, data) = mount_options(&m.options);
    let source = if m.source.is_empty() { m.fstype.as_str() } else { m.source.as_str() };
    mount_fs(source, &target, &m.fstype, flags, (!data.is_empty()).then_some(data.as_str()))?;
    propagate(&target, propagation)
}

/// Prepares the container's root as the spec says and returns its path.
pub fn container_root(spec: &LaunchSpec) -> Result<PathBuf, Failure> {
    let readonly = spec.rootfs.readonly;
    let root = match spec.rootfs.mode {
        RootfsMode::Initramfs => {
            let root = PathBuf::from(INITRAMFS_ROOT);
            // A mount point of its own, so that it can be made read-only.
            mount(Some(&root), &root, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| Failure::sys(&format!("cannot bind {INITRAMFS_ROOT}"), e))?;
            root
        }
        RootfsMode::Disk => {
            let device = spec.rootfs.device.as_deref().expect("checked: disk mode has a device");
            let fstype = spec.rootfs.fstype.as_deref().unwrap_or("ext4");
            let root = PathBuf::from(DISK_ROOT);
            ensure_dir(&root)?;
            let flags = if readonly { MsFlags::MS_RDONLY } else { MsFlags::empty() };
            mount_fs(device, &root, fstype, flags, None)?;
            root
        }
    };
    for m in &spec.mounts {
        spec_mount(&root, m)?;
    }
    dev_links(&root.join("dev"))?;
    if readonly && spec.rootfs.mode == RootfsMode::Initramfs {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, &root, None::<&str>, flags, None::<&str>)
            .map_err(|e| Failure::sys("cannot make the root read-only", e))?;
    }
    Ok(root)
}

/// The links runc makes in a container's /dev. `ptmx` above all: devtmpfs's own node opens the
/// guest's first devpts instance, not the container's, whose ptys would then be missing from
/// /dev/pts.
const DEV_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
    ("ptmx", "pts/ptmx"),
];

fn dev_links(dev: &Path) -> Result<(), Failure> {
    for (name, target) in DEV_LINKS {
        let link = dev.join(name);
        // What devtmpfs put there (its ptmx node) makes way; nothing there is fine too.
        let _ = nix::unistd::unlink(&link);
        nix::unistd::symlinkat(*target, None, &link)
            .map_err(|e| Failure::sys(&format!("cannot link /dev/{name} to {target}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_gets_runc_s_links_in_place_of_what_was_there() {
        let dev = std::env::temp_dir().join(format!("runx-init-dev-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dev);
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("ptmx"), b"").unwrap();
        dev_links(&dev).unwrap();
        for (name, target) in DEV_LINKS {
            assert_eq!(std::fs::read_link(dev.join(name)).unwrap(), Path::new(target), "{name}");
        }
        std::fs::remove_dir_all(dev).unwrap();
    }

    #[test]
    fn splits_flags_from_file_system_data() {
        let options: Vec<String> =
            ["nosuid", "size=16m", "ro", "mode=755", "rw", "rshared"].iter().map(|s| s.to_string()).collect();
        let (flags, propagation, data) = mount_options(&options);
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        assert_eq!(propagation, MsFlags::MS_SHARED | MsFlags::MS_REC);
        assert_eq!(data, "size=16m,mode=755");
    }
}
