//! From config.json's process, hostname and mounts to the guest's launch spec.

use std::path::PathBuf;

use oci_spec::runtime::{Capability, LinuxCapabilities, Mount as OciMount, Spec};
use runx_launch::{
    Capabilities, LaunchSpec, Mount, Process, Rlimit, Rootfs, RootfsMode, User, DEFAULT_MOUNTS, MOUNT_TYPES,
    ROOT_DEVICE, SHARES_DIR,
};

/// The mount(8) option words that are mount flags rather than a file system's data.
const FLAG_OPTIONS: &[&str] =
    &["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "relatime", "noatime", "strictatime", "sync"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LaunchError {
    #[error("mount of {destination} has type {fstype:?}, which a runx guest cannot mount: use one of {}", MOUNT_TYPES.join(", "))]
    MountType { destination: String, fstype: String },
    #[error("bind mount of {host_path} on {destination}: {why}")]
    Bind { host_path: String, destination: String, why: String },
    #[error("{0}")]
    Spec(String),
}

/// A host file or folder that a bind mount brings into the guest: packed into the
/// per-container archive as `/runx/shares/<name>` (a copy made at create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub name: String,
    pub host_path: PathBuf,
}

pub struct Launch {
    pub spec: LaunchSpec,
    pub shares: Vec<Share>,
}

pub fn from_oci(oci: &Spec, rootfs: Rootfs) -> Result<Launch, LaunchError> {
    let process = oci.process().as_ref().expect("checked by Bundle::load");
    let user = process.user();
    let rlimits = process
        .rlimits()
        .iter()
        .flatten()
        .map(|r| Rlimit { kind: r.typ().to_string(), soft: r.soft(), hard: r.hard() })
        .collect();
    let mut shares = Vec::new();
    let mut mounts = Vec::new();
    for m in oci.mounts().iter().flatten() {
        if let Some(mount) = guest_mount(m, &mut shares)? {
            mounts.push(mount);
        }
    }
    add_guest_defaults(&mut mounts);
    let capabilities = process.capabilities().as_ref().map(capability_sets).transpose()?;
    let spec = LaunchSpec {
        version: runx_launch::VERSION,
        process: Process {
            args: process.args().clone().unwrap_or_default(),
            env: process.env().clone().unwrap_or_default(),
            cwd: process.cwd().to_string_lossy().into_owned(),
            user: User {
                uid: user.uid(),
                gid: user.gid(),
                additional_gids: user.additional_gids().clone().unwrap_or_default(),
                umask: user.umask(),
            },
            rlimits,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            capabilities,
            terminal: process.terminal().unwrap_or(false),
        },
        hostname: oci.hostname().clone().filter(|h| !h.is_empty()),
        rootfs,
        mounts,
        wait_for_start: true,
    };
    spec.check().map_err(|e| LaunchError::Spec(e.to_string()))?;
    Ok(Launch { spec, shares })
}

fn guest_mount(m: &OciMount, shares: &mut Vec<Share>) -> Result<Option<Mount>, LaunchError> {
    let destination = m.destination().to_string_lossy().into_owned();
    let options = m.options().clone().unwrap_or_default();
    let fstype = m.typ().clone().unwrap_or_default();
    let is_bind = fstype == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
    if is_bind {
        let source = m.source().as_ref().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let bind_err = |why: &str| LaunchError::Bind {
            host_path: source.clone(),
            destination: destination.clone(),
            why: why.to_owned(),
        };
        if !source.starts_with('/') {
            return Err(bind_err("the source must be an absolute host path"));
        }
        if !std::path::Path::new(&source).exists() {
            return Err(bind_err("the source does not exist on the host"));
        }
        let name = format!("{}", shares.len());
        shares.push(Share { name: name.clone(), host_path: PathBuf::from(&source) });
        let options =
            options.into_iter().filter(|o| o == "ro" || o == "nosuid" || o == "nodev" || o == "noexec").collect();
        return Ok(Some(Mount { destination, fstype: "bind".into(), source: format!("{SHARES_DIR}/{name}"), options }));
    }
    if fstype == "cgroup" {
        // A guest has no cgroup v1 hierarchy to give.
        return Ok(None);
    }
    if destination == "/dev" {
        // The guest's devices are in its devtmpfs, whose data (size, mode) is the guest's.
        let options = options.into_iter().filter(|o| FLAG_OPTIONS.contains(&o.as_str())).collect();
        return Ok(Some(Mount { destination, fstype: "devtmpfs".into(), source: "devtmpfs".into(), options }));
    }
    if !MOUNT_TYPES.contains(&fstype.as_str()) {
        return Err(LaunchError::MountType { destination, fstype });
    }
    let source = m.source().as_ref().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Some(Mount { destination, fstype, source, options }))
}

/// Inserts each DEFAULT_MOUNTS mount that `mounts` lacks: right after the mount of its parent
/// folder (/dev/pts after /dev) if there is one, or else ahead of config.json's mounts.
fn add_guest_defaults(mounts: &mut Vec<Mount>) {
    let mut ahead = 0;
    for (destination, _, _) in DEFAULT_MOUNTS {
        if mounts.iter().any(|m| m.destination == *destination) {
            continue;
        }
        let parent = mounts
            .iter()
            .rposition(|m| destination.strip_prefix(m.destination.as_str()).is_some_and(|rest| rest.starts_with('/')));
        let at = parent.map_or(ahead, |parent| parent + 1);
        if at <= ahead {
            ahead += 1;
        }
        mounts.insert(at, Mount::default_at(destination).expect("a default mount"));
    }
}

/// config.json's capability sets as the guest applies them: a bit per capability number.
fn capability_sets(caps: &LinuxCapabilities) -> Result<Capabilities, LaunchError> {
    let bits = |set: &Option<std::collections::HashSet<Capability>>| -> Result<u64, LaunchError> {
        set.iter().flatten().try_fold(0u64, |bits, cap| Ok(bits | 1 << capability_number(cap)?))
    };
    Ok(Capabilities {
        bounding: bits(caps.bounding())?,
        effective: bits(caps.effective())?,
        permitted: bits(caps.permitted())?,
        inheritable: bits(caps.inheritable())?,
        ambient: bits(caps.ambient())?,
    })
}

fn capability_number(cap: &Capability) -> Result<u8, LaunchError> {
    let name = serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    name.parse::<caps::Capability>().map(|c| c.index()).map_err(|_| {
        LaunchError::Spec(format!("capability {name} is not one runx knows: drop it from process.capabilities"))
    })
}

/// The rootfs part of the launch spec for a delivery mode.
pub fn rootfs(mode: RootfsMode, readonly: bool) -> Rootfs {
    match mode {
        RootfsMode::Initramfs => Rootfs { mode, device: None, fstype: None, readonly },
        RootfsMode::Disk => {
            Rootfs { mode, device: Some(ROOT_DEVICE.to_owned()), fstype: Some("ext4".into()), readonly }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn carries_the_process_exactly() {
        let oci = spec(
            r#"{"ociVersion":"1.0.2","hostname":"box","root":{"path":"rootfs"},
            "process":{"terminal":true,"args":["sh","-c","exit 42"],"env":["A=1","PATH=/bin"],"cwd":"/tmp",
              "user":{"uid":1000,"gid":100,"additionalGids":[5,6],"umask":63},
              "rlimits":[{"type":"RLIMIT_NOFILE","soft":64,"hard":128}],"noNewPrivileges":true}}"#,
        );
        let launch = from_oci(&oci, rootfs(RootfsMode::Initramfs, false)).unwrap();
        let p = &launch.spec.process;
        assert_eq!(p.args, ["sh", "-c", "exit 42"]);
        assert_eq!(p.env, ["A=1", "PATH=/bin"]);
        assert_eq!(p.cwd, "/tmp");
        assert_eq!((p.user.uid, p.user.gid, p.user.umask), (1000, 100, Some(63)));
        assert_eq!(p.user.additional_gids, [5, 6]);
        assert_eq!(p.rlimits, [Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 64, hard: 128 }]);
        assert!(p.no_new_privileges && p.terminal);
        assert_eq!(launch.spec.hostname.as_deref(), Some("box"));
    }

    /// The spec the runtime writes into the guest's archive is what runx-init reads back.
    #[test]
    fn the_guest_reads_what_the_runtime_writes() {
        let oci = spec(
            r#"{"ociVersion":"1.0.2","hostname":"b\u00f6x \"1\"","root":{"path":"rootfs"},
            "process":{"terminal":true,"args":["sh","-c","printf '%s\\n\\t' \"$A\""],"env":["A=1\u0001","PATH=/bin"],
              "cwd":"/tmp","user":{"uid":4294967294,"gid":100,"additionalGids":[5],"umask":63},
              "rlimits":[{"type":"RLIMIT_NOFILE","soft":18446744073709551615,"hard":18446744073709551615}]},
            "mounts":[{"destination":"/run","type":"tmpfs","source":"tmpfs","options":["size=8m","mode=1777"]}]}"#,
        );
        for mode in [RootfsMode::Initramfs, RootfsMode::Disk] {
            let mut written = from_oci(&oci, rootfs(mode, true)).unwrap().spec;
            written.wait_for_start = true;
            let read = LaunchSpec::from_json(&written.to_json().unwrap()).unwrap();
            assert_eq!(read, written);
        }
    }

    #[test]
    fn maps_mounts_for_the_guest() {
        let host_file = std::env::temp_dir().join(format!("runx-launch-share-{}", std::process::id()));
        std::fs::write(&host_file, b"nameserver 10.0.0.1\n").unwrap();
        let oci = spec(&format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}},
            "mounts":[{{"destination":"/proc","type":"proc","source":"proc"}},
              {{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup"}},
              {{"destination":"/run","type":"tmpfs","source":"tmpfs","options":["size=8m"]}},
              {{"destination":"/etc/resolv.conf","type":"bind","source":"{}","options":["rbind","ro"]}}]}}"#,
            host_file.display()
        ));
        let launch = from_oci(&oci, rootfs(RootfsMode::Initramfs, false)).unwrap();
        let dests: Vec<_> = launch.spec.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, ["/dev", "/dev/shm", "/dev/pts", "/sys", "/proc", "/run", "/etc/resolv.conf"]);
        assert_eq!(launch.spec.mounts[6].source, format!("{SHARES_DIR}/0"));
        assert_eq!(launch.spec.mounts[6].options, ["ro"]);
        assert_eq!(launch.shares, [Share { name: "0".into(), host_path: host_file.clone() }]);
        std::fs::remove_file(host_file).unwrap();
    }

    /// runc's default config.json: the guest mounts in its order, /sys after /dev/mqueue.
    #[test]
    fn mounts_in_config_order_with_what_a_guest_lacks_beside_its_parent() {
        let oci = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
              {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
              {"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},
              {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev"]},
              {"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro"]}]}"#,
        );
        let mounts = from_oci(&oci, rootfs(RootfsMode::Initramfs, false)).unwrap().spec.mounts;
        let dests: Vec<_> = mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, ["/proc", "/dev", "/dev/shm", "/dev/pts", "/dev/mqueue", "/sys"]);
        assert_eq!(mounts[1].fstype, "devtmpfs");
        assert_eq!(mounts[1].options, ["nosuid", "strictatime"]);
        assert_eq!(mounts[5].options, ["nosuid", "noexec", "nodev"], "config.json's options, not the default's");
    }

    #[test]
    fn capability_sets_become_bits_by_number() {
        let oci = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_CHOWN","CAP_KILL","CAP_SYS_ADMIN"],"effective":["CAP_KILL"],
              "permitted":["CAP_KILL","CAP_CHOWN"],"ambient":["CAP_KILL"]}}}"#,
        );
        let caps = from_oci(&oci, rootfs(RootfsMode::Initramfs, false)).unwrap().spec.process.capabilities;
        let (chown, kill, sys_admin) = (1 << 0, 1 << 5, 1 << 21);
        assert_eq!(
            caps,
            Some(Capabilities {
                bounding: chown | kill | sys_admin,
                effective: kill,
                permitted: kill | chown,
                inheritable: 0,
                ambient: kill
            })
        );
        let oci = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        );
        assert_eq!(from_oci(&oci, rootfs(RootfsMode::Initramfs, false)).unwrap().spec.process.capabilities, None);
    }

    #[test]
    fn refuses_what_a_guest_cannot_mount() {
        let oci = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "mounts":[{"destination":"/data","type":"nfs","source":"server:/x"}]}"#,
        );
        let err = from_oci(&oci, rootfs(RootfsMode::Initramfs, false)).err().unwrap();
        assert!(matches!(err, LaunchError::MountType { .. }));
        let oci = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "mounts":[{"destination":"/data","type":"bind","source":"/nonexistent/runx","options":["rbind"]}]}"#,
        );
        let err = from_oci(&oci, rootfs(RootfsMode::Initramfs, false)).err().unwrap();
        assert!(err.to_string().contains("does not exist on the host"), "{err}");
    }
}
