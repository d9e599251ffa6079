//! The state store: one 0700 folder per container under the state root, holding `state.json`
//! (written atomically) and what the guest boots from. Creating the folder is what makes an id
//! taken, so two `create`s of one id cannot both win; every later change holds an flock.

use std::collections::hash_map::RandomState;
use std::fs::{self, DirBuilder, File};
use std::hash::BuildHasher;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::container_id::ContainerId;
use crate::guest_kind::GuestKind;

const STATE_FILE: &str = "state.json";
/// The packed-rootfs cache's folder under the root, beside the containers' folders.
const ARCHIVE_CACHE: &str = ".archive-cache";
const LOCK_FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container with id \"{0}\" already exists: delete it first or pick another id")]
    Exists(String),
    #[error("state of container \"{id}\" ({path}): {source}")]
    Io { id: String, path: PathBuf, source: std::io::Error },
    #[error("state of container \"{id}\" is unreadable ({path}): {message}: `runx delete --force {id}` removes it")]
    Corrupt { id: String, path: PathBuf, message: String },
    #[error("cannot use the state root {path}: {source}")]
    Root { path: PathBuf, source: std::io::Error },
    #[error("the state root {path} is {why}: make it runx's own and private (chown to runx's user, chmod 700), or remove it and let runx create it")]
    UnsafeRoot { path: PathBuf, why: String },
}

/// The lifecycle states of the runtime spec, plus `paused` as runc has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What runx remembers of a container between commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub id: String,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The monitor process: the pid containerd waits for.
    pub pid: i32,
    /// The monitor's start time in clock ticks since boot (/proc/PID/stat field 22), so that a
    /// recycled pid is not taken for it.
    pub pid_start_time: u64,
    pub domain_name: String,
    /// The uuid runx gave the domain: a domain is this container's only while it has it.
    pub uuid: String,
    /// 0 until `xl create` made the domain.
    pub domid: u32,
    pub guest: GuestKind,
    /// The domain was created paused: `start` unpauses it. Otherwise it booted at `create` and
    /// runx-init waits for `start`'s xenstore key. (States written before boot_on_create existed
    /// lack the field: their domains were all created paused.)
    #[serde(default = "created_paused_by_default")]
    pub created_paused: bool,
    /// The `runx create` that is making the container (status `creating`): once it is gone
    /// without finishing, the container is a partial one that `delete` cleans up.
    #[serde(default)]
    pub creator: Option<ProcessRef>,
    /// An archive the unfinished create added to the packed-rootfs cache: removed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed_archive: Option<PathBuf>,
    /// The network namespace the monitor lives in.
    #[serde(default)]
    pub network: crate::network::NetworkNamespace,
    /// The guest has a vif, whose backend `create` moved into that namespace.
    #[serde(default)]
    pub vif: bool,
    /// The namespace's interface `start` wired the vif to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wired: Option<String>,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: std::collections::HashMap<String, String>,
}

/// A process, told apart from a later one that got the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRef {
    pub pid: i32,
    /// Clock ticks since boot (/proc/PID/stat field 22).
    pub start_time: u64,
}

impl ProcessRef {
    pub fn current() -> Option<Self> {
        let pid = std::process::id() as i32;
        process_start_time(pid).map(|start_time| Self { pid, start_time })
    }

    /// Whether it still runs (and is not a zombie).
    pub fn alive(&self) -> bool {
        self.pid > 0 && matches!(stat(self.pid), Some((letter, start)) if letter != 'Z' && start == self.start_time)
    }
}

/// The state root (`--root`).
pub struct Store {
    root: PathBuf,
}

fn io_err(id: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let (id, path) = (id.to_owned(), path.to_owned());
    move |source| StateError::Io { id, path, source }
}

impl Store {
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_owned() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn archive_cache_dir(&self) -> PathBuf {
        self.root.join(ARCHIVE_CACHE)
    }

    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        self.root.join(id.as_str())
    }

    /// The Xen domain name of container `id`. Domain names are global to the host, ids only to
    /// a state root (containerd has one per namespace): the name starts with the root's last
    /// part and a digest of its path, so that two roots never ask Xen for the same name, and
    /// it is never all digits (xl would read it as a domid).
    pub fn domain_name(&self, id: &ContainerId) -> String {
        use sha2::{Digest, Sha256};
        let base: String = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().chars().filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c)).collect())
            .filter(|b: &String| !b.is_empty())
            .unwrap_or_else(|| "runx".to_owned());
        let digest = Sha256::digest(self.root.as_os_str().as_encoded_bytes());
        let tag = hex::encode(&digest[..3]);
        format!("{base}-{tag}-{id}")
    }

    /// Creates the root (0700) or checks an existing one: another user who could write to it
    /// could plant symlinks where runx writes state, images and the archive cache.
    fn ensure_root(&self) -> Result<(), StateError> {
        let root_err = |source| StateError::Root { path: self.root.clone(), source };
        DirBuilder::new().recursive(true).mode(0o700).create(&self.root).map_err(root_err)?;
        let md = fs::metadata(&self.root).map_err(root_err)?;
        let uid = nix::unistd::geteuid().as_raw();
        if md.uid() != uid {
            let why = format!("owned by uid {}, not by runx's uid {uid}", md.uid());
            return Err(StateError::UnsafeRoot { path: self.root.clone(), why });
        }
        if md.mode() & 0o022 != 0 {
            let why = format!("writable by its group or by all (mode {:o})", md.mode() & 0o7777);
            return Err(StateError::UnsafeRoot { path: self.root.clone(), why });
        }
        Ok(())
    }

    /// Takes the id: creates its folder (0700), or fails if another container has it.
    pub fn claim(&self, id: &ContainerId) -> Result<PathBuf, StateError> {
        self.ensure_root()?;
        let dir = self.dir(id);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(StateError::Exists(id.to_string())),
            Err(e) => Err(io_err(id.as_str(), &dir)(e)),
        }
    }

    /// An exclusive lock on the container's state, held until the guard drops.
    pub fn lock(&self, id: &ContainerId) -> Result<Flock<File>, StateError> {
        let dir = self.dir(id);
        let path = dir.join(LOCK_FILE);
        let file = match File::options().create(true).truncate(false).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotFound(id.to_string())),
            Err(e) => return Err(io_err(id.as_str(), &path)(e)),
        };
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io_err(id.as_str(), &path)(e.into()))
    }

    pub fn load(&self, id: &ContainerId) -> Result<ContainerState, StateError> {
        let dir = self.dir(id);
        let path = dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() => {
                // Claimed, but its create was killed before it wrote anything: no domain exists.
                let message = "state.json is missing: its create was interrupted".to_owned();
                return Err(StateError::Corrupt { id: id.to_string(), path, message });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotFound(id.to_string())),
            Err(e) => return Err(io_err(id.as_str(), &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            id: id.to_string(),
            path,
            message: e.to_string(),
        })
    }

    /// Writes the state atomically (temporary file, fsync, rename).
    pub fn save(&self, state: &ContainerState) -> Result<(), StateError> {
        let dir = self.root.join(&state.id);
        let json = serde_json::to_vec_pretty(state).expect("state serializes");
        write_atomically(&dir.join(STATE_FILE), &json).map_err(io_err(&state.id, &dir))
    }

    /// Removes the container's folder and everything in it.
    pub fn remove(&self, id: &ContainerId) -> Result<(), StateError> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(id.as_str(), &dir)(e)),
            _ => Ok(()),
        }
    }

    /// The ids of all containers under the root, sorted; missing root = none.
    pub fn ids(&self) -> Result<Vec<ContainerId>, StateError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StateError::Root { path: self.root.clone(), source }),
        };
        let mut ids: Vec<ContainerId> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false) && e.file_name() != ARCHIVE_CACHE)
            .filter_map(|e| ContainerId::parse(&e.file_name().to_string_lossy()).ok())
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }
}

/// Writes `bytes` to `path` so that readers see the old or the new content, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let random = RandomState::new();
    let names = (0..TEMPORARY_TRIES).map(|attempt| format!(".{name}.{:016x}.tmp", random.hash_one(attempt)));
    let (tmp, mut file) = create_temporary(path, names)?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// How many names `write_atomically` tries for its temporary file.
const TEMPORARY_TRIES: u64 = 16;

/// Creates a new file next to `path` under the first of `names` that is free. The pid file's
/// folder may be writable by others: an exclusive create (O_EXCL) never follows a symlink
/// planted under the name, and random names cannot be planted in advance.
fn create_temporary(path: &Path, names: impl Iterator<Item = String>) -> std::io::Result<(PathBuf, File)> {
    for name in names {
        let tmp = path.with_file_name(name);
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("no free name for a temporary file next to {}: remove the .*.tmp files there", path.display()),
    ))
}

/// A process's state letter and start time (clock ticks since boot), from /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// The start time of a process (clock ticks since boot), or None when it does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether the monitor recorded in `state` is still alive (and not a zombie).
pub fn monitor_alive(state: &ContainerState) -> bool {
    ProcessRef { pid: state.pid, start_time: state.pid_start_time }.alive()
}

fn created_paused_by_default() -> bool {
    true
}

impl ContainerState {
    /// The pid to report: the monitor's, or 0 once the container has stopped (as runc does).
    pub fn reported_pid(&self, status: Status) -> i32 {
        if status == Status::Stopped {
            0
        } else {
            self.pid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> Store {
        let root = std::env::temp_dir().join(format!("runx-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        Store::new(&root)
    }

    fn state(id: &str) -> ContainerState {
        ContainerState {
            id: id.into(),
            status: Status::Created,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            pid: std::process::id() as i32,
            pid_start_time: process_start_time(std::process::id() as i32).unwrap(),
            domain_name: id.into(),
            uuid: "7f4a1c52-0000-4000-8000-000000000001".into(),
            domid: 3,
            guest: GuestKind::RunxInit,
            created_paused: false,
            creator: None,
            packed_archive: None,
            network: crate::network::NetworkNamespace::New,
            vif: true,
            wired: Some("eth0".into()),
            created: "2026-11-28T00:00:00Z".into(),
            owner: "root".into(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn an_id_is_claimed_once_and_round_trips() {
        let store = store("claim");
        let id = ContainerId::parse("c1").unwrap();
        let dir = store.claim(&id).unwrap();
        assert_eq!(fs::metadata(dir.as_path()).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(matches!(store.claim(&id), Err(StateError::Exists(_))));
        let err = store.load(&id).unwrap_err().to_string();
        assert!(err.contains("interrupted") && err.contains("runx delete --force c1"), "{err}");
        store.save(&state("c1")).unwrap();
        assert_eq!(store.load(&id).unwrap(), state("c1"));
        assert!(monitor_alive(&store.load(&id).unwrap()));
        assert_eq!(store.ids().unwrap(), [id.clone()]);
        store.remove(&id).unwrap();
        assert!(store.ids().unwrap().is_empty());
        assert!(matches!(store.lock(&id), Err(StateError::NotFound(_))));
        assert!(matches!(store.load(&id), Err(StateError::NotFound(_))));
        fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn domain_names_differ_per_root_and_are_never_numbers() {
        let id = ContainerId::parse("7").unwrap();
        let default = Store::new(Path::new("/run/containerd/runc/default")).domain_name(&id);
        let k8s = Store::new(Path::new("/run/containerd/runc/k8s.io")).domain_name(&id);
        let other = Store::new(Path::new("/var/run/other/default")).domain_name(&id);
        assert!(default.starts_with("default-") && default.ends_with("-7"), "{default}");
        assert!(k8s.starts_with("k8s.io-"), "{k8s}");
        assert_ne!(default, other);
        assert_eq!(default, Store::new(Path::new("/run/containerd/runc/default")).domain_name(&id));
        assert!(Store::new(Path::new("/")).domain_name(&id).starts_with("runx-"));
    }

    #[test]
    fn a_recycled_pid_is_not_the_monitor() {
        let mut s = state("c2");
        s.pid_start_time += 1;
        assert!(!monitor_alive(&s));
        s.pid = i32::MAX;
        assert!(!monitor_alive(&s));
    }

    #[test]
    fn corrupt_state_names_the_fix() {
        let store = store("corrupt");
        let id = ContainerId::parse("c3").unwrap();
        let dir = store.claim(&id).unwrap();
        fs::write(dir.join(STATE_FILE), b"{").unwrap();
        let err = store.load(&id).unwrap_err().to_string();
        assert!(err.contains("runx delete --force c3"), "{err}");
        fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn a_root_others_may_write_to_is_refused() {
        let store = store("open");
        let id = ContainerId::parse("c4").unwrap();
        fs::create_dir_all(store.root()).unwrap();
        fs::set_permissions(store.root(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = store.claim(&id).unwrap_err().to_string();
        assert!(err.contains(&format!("the state root {}", store.root().display())), "{err}");
        assert!(err.contains("writable by its group or by all (mode 777)") && err.contains("chmod 700"), "{err}");
        fs::set_permissions(store.root(), fs::Permissions::from_mode(0o755)).unwrap();
        store.claim(&id).unwrap();
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(store.root(), Some(nix::unistd::Uid::from_raw(4321)), None).unwrap();
            let err = store.claim(&ContainerId::parse("c5").unwrap()).unwrap_err().to_string();
            assert!(err.contains("owned by uid 4321"), "{err}");
        }
        fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn a_symlink_planted_at_a_temporary_name_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("runx-state-planted-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        let path = dir.join("pid");
        // The name the temporary file had when it was derived from the pid alone.
        std::os::unix::fs::symlink(&victim, dir.join(format!(".pid.tmp{}", std::process::id()))).unwrap();
        write_atomically(&path, b"42").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"42");
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        // A name taken by a symlink is passed over, never written through.
        std::os::unix::fs::symlink(&victim, dir.join("planted")).unwrap();
        let (tmp, _) = create_temporary(&path, ["planted".to_owned(), "free".to_owned()].into_iter()).unwrap();
        assert_eq!(tmp, dir.join("free"));
        let err = create_temporary(&path, ["planted".to_owned()].into_iter()).unwrap_err();
        assert!(err.to_string().contains("no free name for a temporary file next to"), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        fs::remove_dir_all(dir).unwrap();
    }

    use std::os::unix::fs::PermissionsExt;
}
