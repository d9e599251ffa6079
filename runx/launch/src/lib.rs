//! The launch spec: the one definition of what a runx guest runs, written by
//! the host runtime into the per-container initramfs (`/runx/launch.json`)
//! and read by `runx-init`, the guest's PID 1. See docs/launch-spec.md.
//!
//! Also the xenstore keys through which the guest reports how the process
//! ended and the host asks for signals, so that both sides name them once.

use serde::{Deserialize, Serialize};

pub mod annotations;

/// The version this build writes and reads. A guest refuses any other.
pub const VERSION: u32 = 2;

/// Where the spec lives inside the guest's initramfs.
pub const SPEC_PATH: &str = "/runx/launch.json";
/// Where the container's root file system lives in `initramfs` mode.
pub const INITRAMFS_ROOT: &str = "/runx/rootfs";
/// Where files and folders the host hands in for bind mounts live in the guest.
pub const SHARES_DIR: &str = "/runx/shares";
/// The block device a `disk` mode rootfs appears as in the guest.
pub const ROOT_DEVICE: &str = "/dev/xvda";
/// The smallest guest memory, in MiB, the runtime grants: a Linux guest with runx-init boots in
/// no less.
pub const MIN_MEMORY_MIB: u64 = 16;

/// xenstore keys, relative to the guest's own `/local/domain/<domid>/`.
pub mod keys {
    /// The absolute path the host uses for `key` of domain `domid` (the guest writes `key` relative
    /// to its own domain).
    pub fn of_domain(domid: u32, key: &str) -> String {
        format!("/local/domain/{domid}/{key}")
    }

    /// Written by the guest once the container's process has been started (value "1").
    pub const STARTED: &str = "data/runx/started";
    /// Written by the guest when the process ended: its exit code, or 128 + N after signal N.
    pub const EXIT_CODE: &str = "data/runx/exit-code";
    /// Written with EXIT_CODE when the process was killed by a signal: the signal number.
    pub const EXIT_SIGNAL: &str = "data/runx/exit-signal";
    /// Written by the guest when it could not start the process: why.
    pub const ERROR: &str = "data/runx/error";
    /// Written by the host: a signal number for the guest to send to the process.
    pub const SIGNAL: &str = "data/runx/signal";
    /// Written by the host at `start` (value "1"): a guest whose spec says `wait_for_start` runs
    /// the process only once this exists.
    pub const START: &str = "data/runx/start";
}

/// How the container's root file system reaches the guest.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RootfsMode {
    /// Inside the per-container cpio, under INITRAMFS_ROOT.
    Initramfs,
    /// On a block device (ext4 or erofs) the guest mounts.
    Disk,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rootfs {
    pub mode: RootfsMode,
    /// `disk` mode: the guest's block device, e.g. `/dev/xvda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `disk` mode: the file system type, `ext4` or `erofs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// File mode creation mask; 0o022 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
}

/// A resource limit, named as in the OCI spec (`RLIMIT_NOFILE`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// The rlimit names a guest can apply.
pub const RLIMITS: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

/// A file system the guest mounts inside the container's root before starting the process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub fstype: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// The file system types a guest mounts; anything else is refused when the spec is checked.
/// `bind` mounts a share (a file or folder the host packed under SHARES_DIR) into the root.
pub const MOUNT_TYPES: &[&str] = &["proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup2", "bind"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// The process has a terminal (`ctr run -t`): the guest console keeps its line discipline.
    /// Without one the console is made raw, so that the bytes the process writes reach the
    /// host unchanged (no `\n` -> `\r\n`, no echo).
    #[serde(default)]
    pub terminal: bool,
}

/// Everything the guest needs to run the container's process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
    pub version: u32,
    pub process: Process,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub rootfs: Rootfs,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// The guest prepares the container's root, then waits for the host to write `keys::START`
    /// before it runs the process: the domain can boot while the runtime's `create` returns, and
    /// the process still starts only at `start`, as the runtime spec wants.
    #[serde(default)]
    pub wait_for_start: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("launch spec is not valid JSON for this version: {0}")]
    Json(#[from] serde_json::Error),
    #[error("launch spec version {found} is not supported (this runx-init reads version {VERSION}): use the runx-init that came with the runtime")]
    Version { found: u32 },
    #[error("launch spec: {0}")]
    Invalid(String),
}

impl LaunchSpec {
    pub fn to_json(&self) -> Result<Vec<u8>, SpecError> {
        self.check()?;
        Ok(serde_json::to_vec_pretty(self)?)
    }

    /// Parses and checks a spec; the version is checked before anything else.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SpecError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let Versioned { version } = serde_json::from_slice(bytes)?;
        if version != VERSION {
            return Err(SpecError::Version { found: version });
        }
        let spec: LaunchSpec = serde_json::from_slice(bytes)?;
        spec.check()?;
        Ok(spec)
    }

    /// The rules both sides rely on.
    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |why: String| Err(SpecError::Invalid(why));
        if self.version != VERSION {
            return Err(SpecError::Version { found: self.version });
        }
        if self.process.args.is_empty() || self.process.args[0].is_empty() {
            return bad("process.args is empty: name the program to run".into());
        }
        if !self.process.cwd.starts_with('/') {
            return bad(format!("process.cwd {:?} must be an absolute path", self.process.cwd));
        }
        if let Some(env) = self.process.env.iter().find(|e| !e.contains('=') || e.starts_with('=')) {
            return bad(format!("process.env entry {env:?} must be NAME=value"));
        }
        if let Some(r) = self.process.rlimits.iter().find(|r| !RLIMITS.contains(&r.kind.as_str())) {
            return bad(format!("rlimit {:?} is unknown: use one of {}", r.kind, RLIMITS.join(", ")));
        }
        if let Some(r) = self.process.rlimits.iter().find(|r| r.soft > r.hard) {
            return bad(format!("rlimit {}: soft limit {} is above the hard limit {}", r.kind, r.soft, r.hard));
        }
        if let Some(m) = self.mounts.iter().find(|m| !MOUNT_TYPES.contains(&m.fstype.as_str())) {
            return bad(format!(
                "mount of {} has type {:?}, which a runx guest does not mount: use one of {}",
                m.destination,
                m.fstype,
                MOUNT_TYPES.join(", ")
            ));
        }
        if let Some(m) = self.mounts.iter().find(|m| !m.destination.starts_with('/') || m.destination.contains("..")) {
            return bad(format!("mount destination {:?} must be an absolute path without '..'", m.destination));
        }
        let share_prefix = format!("{SHARES_DIR}/");
        if let Some(m) = self
            .mounts
            .iter()
            .find(|m| m.fstype == "bind" && (!m.source.starts_with(&share_prefix) || m.source.contains("..")))
        {
            return bad(format!(
                "bind mount of {} has source {:?}: a guest can only bind shares under {SHARES_DIR}/",
                m.destination, m.source
            ));
        }
        match (self.rootfs.mode, &self.rootfs.device) {
            (RootfsMode::Disk, None) => bad("rootfs mode disk needs a device".into()),
            (RootfsMode::Initramfs, Some(dev)) => bad(format!("rootfs mode initramfs takes no device (got {dev:?})")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LaunchSpec {
        LaunchSpec {
            version: VERSION,
            process: Process {
                args: vec!["/bin/sh".into(), "-c".into(), "echo \"hi\"; exit 42".into()],
                env: vec!["PATH=/bin:/usr/bin".into(), "GREETING=a=b".into()],
                cwd: "/srv".into(),
                user: User { uid: 1000, gid: 1000, additional_gids: vec![10, 20], umask: Some(0o027) },
                rlimits: vec![Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 512, hard: 1024 }],
                no_new_privileges: true,
                terminal: false,
            },
            hostname: Some("web".into()),
            rootfs: Rootfs { mode: RootfsMode::Initramfs, device: None, fstype: None, readonly: true },
            mounts: vec![Mount {
                destination: "/tmp".into(),
                fstype: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec!["nosuid".into(), "size=16m".into()],
            }],
            wait_for_start: true,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let spec = sample();
        assert_eq!(LaunchSpec::from_json(&spec.to_json().unwrap()).unwrap(), spec);
    }

    #[test]
    fn refuses_other_versions_first() {
        // Version 1 guests ran the process at once: a host that waits for `start` needs version 2.
        let err = LaunchSpec::from_json(br#"{"version": 1, "whatever": true}"#).unwrap_err();
        assert!(matches!(err, SpecError::Version { found: 1 }), "{err}");
        assert!(err.to_string().contains("reads version 2"), "{err}");
    }

    #[test]
    fn refuses_unknown_fields() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json().unwrap()).unwrap();
        json["process"]["shell"] = "bash".into();
        let err = LaunchSpec::from_json(json.to_string().as_bytes()).unwrap_err().to_string();
        assert!(err.contains("unknown field `shell`"), "{err}");
    }

    #[test]
    fn refuses_what_the_guest_cannot_honour() {
        type Breakage = fn(&mut LaunchSpec);
        let cases: [(Breakage, &str); 9] = [
            (|s| s.process.args.clear(), "process.args is empty"),
            (|s| s.process.cwd = "srv".into(), "must be an absolute path"),
            (|s| s.process.env.push("NOEQUALS".into()), "NAME=value"),
            (|s| s.process.rlimits[0].kind = "RLIMIT_FOO".into(), "RLIMIT_FOO"),
            (|s| s.process.rlimits[0].soft = 4096, "above the hard limit"),
            (|s| s.mounts[0].fstype = "nfs".into(), "type \"nfs\""),
            (|s| s.rootfs.mode = RootfsMode::Disk, "needs a device"),
            (
                |s| {
                    s.mounts[0].fstype = "bind".into();
                    s.mounts[0].source = "/etc".into();
                },
                "only bind shares under /runx/shares/",
            ),
            (
                |s| {
                    s.mounts[0].fstype = "bind".into();
                    s.mounts[0].source = "/runx/shares/../../etc".into();
                },
                "only bind shares",
            ),
        ];
        for (breaks, message) in cases {
            let mut spec = sample();
            breaks(&mut spec);
            let err = spec.to_json().unwrap_err().to_string();
            assert!(err.contains(message), "{message:?} missing from {err}");
        }
    }
}
