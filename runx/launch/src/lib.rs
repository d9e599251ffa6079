//! The launch spec: the one definition of what a runx guest runs, written by
//! the host runtime into the per-container initramfs (`/runx/launch.json`)
//! and read by `runx-init`, the guest's PID 1. See docs/launch-spec.md.
//!
//! Also the xenstore keys through which the guest reports how the process
//! ended and the host asks for signals, so that both sides name them once.

use miniserde::json::{self, Number, Value};
use miniserde::ser::Fragment;
use miniserde::{de, Deserialize, Serialize};

pub mod annotations;
pub mod exec;
pub mod network;

/// The version this build writes and reads. A guest refuses any other.
pub const VERSION: u32 = 3;

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
    /// Written by the host at `start`, before START, when the guest has a network interface:
    /// `network::GuestNetwork` as text.
    pub const NETWORK: &str = "data/runx/network";
}

/// How the container's root file system reaches the guest.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum RootfsMode {
    /// Inside the per-container cpio, under INITRAMFS_ROOT.
    #[serde(rename = "initramfs")]
    Initramfs,
    /// On a block device (ext4 or erofs) the guest mounts.
    #[serde(rename = "disk")]
    Disk,
}

impl RootfsMode {
    /// The mode of this name in the launch spec (`initramfs`, `disk`): the host config and the
    /// runtime's annotation name modes so too.
    pub fn from_name(name: &str) -> Option<Self> {
        json::from_str(&json::to_string(name)).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rootfs {
    pub mode: RootfsMode,
    /// `disk` mode: the guest's block device, e.g. `/dev/xvda`.
    pub device: Option<String>,
    /// `disk` mode: the file system type, `ext4` or `erofs`.
    pub fstype: Option<String>,
    pub readonly: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// File mode creation mask; 0o022 when absent.
    pub umask: Option<u32>,
}

/// A resource limit, named as in the OCI spec (`RLIMIT_NOFILE`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

/// The file system types a guest mounts; anything else is refused when the spec is checked.
/// `bind` mounts a share (a file or folder the host packed under SHARES_DIR) into the root;
/// `devtmpfs` is the guest's own /dev, with the devices Xen gave it.
pub const MOUNT_TYPES: &[&str] = &["proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "mqueue", "cgroup2", "bind"];

/// What every container root has, mounted where config.json does not mount it: destination,
/// type (also the source) and options. runc's default config.json mounts these; a guest's /dev
/// is its devtmpfs.
pub const DEFAULT_MOUNTS: &[(&str, &str, &[&str])] = &[
    ("/proc", "proc", &["nosuid", "noexec", "nodev"]),
    ("/dev", "devtmpfs", &["nosuid"]),
    ("/dev/pts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
    ("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev", "mode=1777"]),
    ("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
];

impl Mount {
    /// The DEFAULT_MOUNTS entry for `destination`.
    pub fn default_at(destination: &str) -> Option<Mount> {
        DEFAULT_MOUNTS.iter().find(|(d, _, _)| *d == destination).map(|(destination, fstype, options)| Mount {
            destination: destination.to_string(),
            fstype: fstype.to_string(),
            source: fstype.to_string(),
            options: options.iter().map(|o| o.to_string()).collect(),
        })
    }

    /// All of DEFAULT_MOUNTS, in order.
    pub fn defaults() -> Vec<Mount> {
        DEFAULT_MOUNTS.iter().filter_map(|(destination, _, _)| Mount::default_at(destination)).collect()
    }
}

/// The process's capability sets, a bit per capability number (bit 0 is CAP_CHOWN), as
/// config.json's `process.capabilities` names them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    /// Absent: the process keeps every capability root has in the guest.
    pub capabilities: Option<Capabilities>,
    /// The process has a terminal (`ctr run -t`): a pty of the container's own devpts, which the
    /// guest relays to its console. The console itself is always raw, so that the bytes reach
    /// the host unchanged (no `\n` -> `\r\n`, no echo) and the pty alone is the terminal.
    pub terminal: bool,
}

/// Everything the guest needs to run the container's process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaunchSpec {
    pub version: u32,
    pub process: Process,
    pub hostname: Option<String>,
    pub rootfs: Rootfs,
    /// In the order the guest mounts them, /proc, /sys and /dev included: the guest mounts no
    /// file system of its own in the container's root.
    pub mounts: Vec<Mount>,
    /// The guest prepares the container's root, then waits for the host to write `keys::START`
    /// before it runs the process: the domain can boot while the runtime's `create` returns, and
    /// the process still starts only at `start`, as the runtime spec wants.
    pub wait_for_start: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("launch spec is not valid JSON for this version: {0}")]
    Json(String),
    #[error("launch spec version {found} is not supported (this runx-init reads version {VERSION}): use the runx-init that came with the runtime")]
    Version { found: u64 },
    #[error("launch spec: {0}")]
    Invalid(String),
}

/// The fields a spec may leave out besides the optional (`Option`) ones, and what they then are.
/// miniserde's derive has no `#[serde(default)]`: `from_json` fills these in before it reads.
const DEFAULTED: &[(&str, &str)] = &[
    ("process.env", "[]"),
    ("process.user.additional_gids", "[]"),
    ("process.rlimits", "[]"),
    ("process.no_new_privileges", "false"),
    ("process.terminal", "false"),
    ("rootfs.readonly", "false"),
    ("mounts", "[]"),
    ("mounts.source", "\"\""),
    ("mounts.options", "[]"),
    ("wait_for_start", "false"),
];

impl LaunchSpec {
    /// The spec as JSON: every field, unset optional ones as null.
    pub fn to_json(&self) -> Result<Vec<u8>, SpecError> {
        self.check()?;
        Ok(json::to_string(self).into_bytes())
    }

    /// Parses and checks a spec; the version is checked before anything else.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SpecError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u64,
        }
        let text = std::str::from_utf8(bytes).map_err(|e| SpecError::Json(e.to_string()))?;
        let mut given: Value = json::from_str(text).map_err(|_| SpecError::Json("not one JSON document".into()))?;
        let Versioned { version } = read(&given)?;
        if version != u64::from(VERSION) {
            return Err(SpecError::Version { found: version });
        }
        fill_defaults(&mut given, "");
        let spec: LaunchSpec = read(&given)?;
        refuse_unknown(&given, &spec, "")?;
        spec.check()?;
        Ok(spec)
    }

    /// The rules both sides rely on.
    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |why: String| Err(SpecError::Invalid(why));
        if self.version != VERSION {
            return Err(SpecError::Version { found: self.version.into() });
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

/// `value` read as a `T` (miniserde reads from text only: this drives its visitors the same way).
fn read<T: Deserialize>(value: &Value) -> Result<T, SpecError> {
    fn visit(value: &Value, visitor: &mut dyn de::Visitor, path: &str) -> Result<(), SpecError> {
        let wrong = |_| SpecError::Json(format!("{path}: not a value this field takes"));
        match value {
            Value::Null => visitor.null().map_err(wrong),
            Value::Bool(b) => visitor.boolean(*b).map_err(wrong),
            Value::Number(Number::U64(n)) => visitor.nonnegative(*n).map_err(wrong),
            Value::Number(Number::I64(n)) => visitor.negative(*n).map_err(wrong),
            Value::Number(Number::F64(n)) => visitor.float(*n).map_err(wrong),
            Value::String(s) => visitor.string(s).map_err(wrong),
            Value::Array(items) => {
                let mut seq = visitor.seq().map_err(wrong)?;
                for item in items.iter() {
                    visit(item, seq.element().map_err(wrong)?, path)?;
                }
                seq.finish().map_err(wrong)
            }
            Value::Object(fields) => {
                let mut map = visitor.map().map_err(wrong)?;
                for (name, value) in fields.iter() {
                    visit(value, map.key(name).map_err(wrong)?, &field(path, name))?;
                }
                map.finish().map_err(|_| SpecError::Json(format!("{path}: a required field is missing")))
            }
        }
    }
    let mut out = None;
    visit(value, T::begin(&mut out), "")?;
    out.ok_or_else(|| SpecError::Json("nothing read".into()))
}

fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Adds the DEFAULTED fields that the objects of `value` (at `path`) leave out.
fn fill_defaults(value: &mut Value, path: &str) {
    match value {
        Value::Object(fields) => {
            for (defaulted, default) in DEFAULTED {
                let name =
                    defaulted.strip_prefix(path).and_then(|n| n.strip_prefix('.').or(path.is_empty().then_some(n)));
                if let Some(name) = name.filter(|n| !n.contains('.') && !fields.contains_key(*n)) {
                    fields.insert(name.to_owned(), json::from_str(default).unwrap_or(Value::Null));
                }
            }
            for (name, value) in fields.iter_mut() {
                fill_defaults(value, &field(path, name));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| fill_defaults(item, path)),
        _ => {}
    }
}

/// Refuses a field of `given` that `known` (what was read from it) does not write back: miniserde's
/// derive skips the fields it does not know.
fn refuse_unknown(given: &Value, known: &dyn Serialize, path: &str) -> Result<(), SpecError> {
    match (given, known.begin()) {
        (Value::Object(given), Fragment::Map(mut known)) => {
            let mut names = Vec::new();
            while let Some((name, value)) = known.next() {
                if let Some(given) = given.get(name.as_ref()) {
                    refuse_unknown(given, value, &field(path, &name))?;
                }
                names.push(name.into_owned());
            }
            match given.keys().find(|name| !names.contains(name)) {
                Some(name) => Err(SpecError::Invalid(format!("unknown field `{name}` ({})", field(path, name)))),
                None => Ok(()),
            }
        }
        (Value::Array(given), Fragment::Seq(mut known)) => {
            for given in given.iter() {
                match known.next() {
                    Some(known) => refuse_unknown(given, known, path)?,
                    None => break,
                }
            }
            Ok(())
        }
        _ => Ok(()),
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
                capabilities: Some(Capabilities {
                    bounding: 1 << 0 | 1 << 10,
                    effective: 1 << 10,
                    permitted: 1 << 10,
                    inheritable: 0,
                    ambient: 0,
                }),
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
        // Version 2 guests mounted /proc, /sys and /dev themselves: a version 3 spec lists them.
        let err = LaunchSpec::from_json(br#"{"version": 2, "whatever": true}"#).unwrap_err();
        assert!(matches!(err, SpecError::Version { found: 2 }), "{err}");
        assert!(err.to_string().contains("reads version 3"), "{err}");
    }

    #[test]
    fn refuses_unknown_fields() {
        let json = String::from_utf8(sample().to_json().unwrap()).unwrap();
        let json = json.replacen(r#""user":{"#, r#""user":{"shell":"bash","#, 1);
        let err = LaunchSpec::from_json(json.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("unknown field `shell` (process.user.shell)"), "{err}");
        let json = json.replacen(r#""shell":"bash","#, "", 1).replacen(
            r#""type":"tmpfs","#,
            r#""type":"tmpfs","size":null,"#,
            1,
        );
        let err = LaunchSpec::from_json(json.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("unknown field `size` (mounts.size)"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_one_json_document() {
        let json = String::from_utf8(sample().to_json().unwrap()).unwrap();
        let cases = [
            (format!("{json} {{}}"), "not one JSON document"),
            (json.replacen(r#""hostname":"web""#, r#""hostname":}"#, 1), "not one JSON document"),
            (json.replacen(r#""uid":1000"#, r#""uid":-1"#, 1), "process.user.uid: not a value this field takes"),
            (json.replacen(r#""mode":"initramfs""#, r#""mode":"nfs""#, 1), "rootfs.mode: not a value"),
            (json.replacen(r#""cwd":"/srv","#, "", 1), "process: a required field is missing"),
        ];
        for (json, message) in cases {
            let err = LaunchSpec::from_json(json.as_bytes()).unwrap_err();
            assert!(matches!(err, SpecError::Json(_)), "{err}");
            assert!(err.to_string().contains(message), "{message:?} missing from {err}");
        }
    }

    /// What runtimes wrote with serde_json (pretty, defaults left out) still reads the same.
    #[test]
    fn reads_the_format_as_serde_json_wrote_it() {
        let json = r#"{
  "version": 3,
  "process": {
    "args": ["/bin/sh"],
    "cwd": "/",
    "user": { "uid": 0, "gid": 0 }
  },
  "rootfs": { "mode": "disk", "device": "/dev/xvda", "fstype": "ext4" },
  "mounts": [{ "destination": "/tmp", "type": "tmpfs" }]
}"#;
        let spec = LaunchSpec::from_json(json.as_bytes()).unwrap();
        assert_eq!(spec.process.user, User { uid: 0, gid: 0, additional_gids: vec![], umask: None });
        assert!(spec.process.env.is_empty() && spec.process.rlimits.is_empty());
        assert!(!spec.process.no_new_privileges && !spec.process.terminal && !spec.wait_for_start);
        assert_eq!((spec.hostname.as_ref(), spec.process.capabilities), (None, None));
        assert_eq!(
            spec.rootfs,
            Rootfs {
                mode: RootfsMode::Disk,
                device: Some("/dev/xvda".into()),
                fstype: Some("ext4".into()),
                readonly: false
            }
        );
        assert_eq!(
            spec.mounts,
            [Mount { destination: "/tmp".into(), fstype: "tmpfs".into(), source: String::new(), options: vec![] }]
        );
        assert_eq!(LaunchSpec::from_json(&spec.to_json().unwrap()).unwrap(), spec);
        let json = json.replacen(r#""version": 3,"#, r#""version": 3, "hostname": null,"#, 1);
        assert_eq!(LaunchSpec::from_json(json.as_bytes()).unwrap(), spec);
    }

    #[test]
    fn defaulted_fields_are_fields() {
        let json = String::from_utf8(sample().to_json().unwrap()).unwrap();
        let value: Value = json::from_str(&json).unwrap();
        for (path, _) in DEFAULTED {
            let mut at = &value;
            for name in path.split('.') {
                if let Value::Array(items) = at {
                    at = &items[0];
                }
                let Value::Object(fields) = at else { panic!("{path}: {json}") };
                at = fields.get(name).unwrap_or_else(|| panic!("{path} is not a field: {json}"));
            }
        }
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
