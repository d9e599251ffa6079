//! The lifecycle operations behind runx's verbs, on a state store and Xen.
//!
//! `create` records its intent before it asks Xen for anything (status `creating`, the domain's
//! name and uuid), so that whatever point it is killed at, `delete` finds and removes what it
//! made; and it removes only that: the domain with the uuid it chose, never one found by name.

mod exec;
pub use exec::{ExecFlags, ExecRefused};
mod usage;
mod wiring;

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runx_launch::RootfsMode;

use crate::bundle::{Bundle, BundleError};
use crate::container_id::{ContainerId, InvalidId};
use crate::guest_kind::{GuestKind, NotForKernel};
use crate::guest_memory::{self, RootFootprint, TooSmall};
use crate::host_config::HostConfig;
use crate::monitor::Guest;
use crate::network::{NamespaceError, Net, NetError, NetworkNamespace};
use crate::plan::{self, Boot, PlanError};
use crate::state::{self, ContainerState, ProcessRef, StateError, Status, Store};
use crate::xen::{Domain, Xen, XenError};

/// The files a container's folder holds besides its state.
pub const XL_CONFIG: &str = "domain.cfg";
pub const KERNEL: &str = "kernel";
pub const RAMDISK: &str = "ramdisk";
pub const ROOT_IMAGE: &str = "root.ext4";
/// How long `delete` waits for a monitor to exit on its own after its domain is destroyed.
const MONITOR_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Id(#[from] InvalidId),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Memory(#[from] TooSmall),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Network(#[from] NetError),
    #[error("cannot build the guest's images: {0}")]
    Image(#[from] runx_image::guest::GuestImageError),
    #[error("xl config: {0}")]
    XlConfig(#[from] runx_xl::XlError),
    #[error(transparent)]
    Xen(#[from] XenError),
    #[error(transparent)]
    Update(#[from] crate::update::UpdateError),
    #[error(transparent)]
    Exec(#[from] ExecRefused),
    #[error(transparent)]
    Launch(#[from] crate::launch::LaunchError),
    #[error("container not running")]
    NotRunning,
    #[error("cannot {action} container {id} in state {status}")]
    WrongState { action: &'static str, id: String, status: &'static str },
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: &'static str },
    #[error("cannot start container {id}: {source}")]
    Start { id: String, source: XenError },
    #[error("cannot send signal to container {id}: {source}")]
    Signal { id: String, source: XenError },
    #[error(transparent)]
    NotForKernel(#[from] NotForKernel),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the monitor of container {id} did not start: {why}")]
    Monitor { id: String, why: String },
    #[error("xl created no domain with uuid {uuid} for container {id}")]
    NoDomain { id: String, uuid: String },
    #[error("cannot make a uuid for the domain: {0}")]
    Uuid(std::io::Error),
    #[error("create of container {id} stopped by signal {signal}: what it made is removed")]
    Interrupted { id: String, signal: i32 },
}

pub struct Runtime {
    pub store: Store,
    pub host: HostConfig,
    pub xen: Box<dyn Xen>,
    pub net: Box<dyn Net>,
}

/// What `create` needs beyond the id and the bundle.
pub struct CreateOptions<'a> {
    /// Starts the monitor of a guest in the container's network namespace, with the descriptor
    /// to report readiness on; returns the monitor's pid.
    pub spawn_monitor: &'a dyn Fn(&Guest<'_>, &NetworkNamespace, OwnedFd) -> std::io::Result<i32>,
    /// Asked between the steps of `create`: a signal that asks it to stop (SIGTERM, SIGINT),
    /// after which it removes what it made and fails.
    pub interrupted: &'a dyn Fn() -> Option<i32>,
}

impl Runtime {
    /// The status as it is now: a container whose monitor is gone has stopped, and so has one
    /// whose create was killed before it finished.
    pub fn status(&self, state: &ContainerState) -> Status {
        let alive = match state.status {
            Status::Creating => state.creator.map_or(false, |c| c.alive()),
            _ => state::monitor_alive(state),
        };
        if alive {
            state.status
        } else {
            Status::Stopped
        }
    }

    pub fn load(&self, id: &str) -> Result<(ContainerId, ContainerState), ContainerError> {
        let id = ContainerId::parse(id)?;
        let state = self.store.load(&id)?;
        Ok((id, state))
    }

    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        options: &CreateOptions<'_>,
    ) -> Result<ContainerState, ContainerError> {
        let id = ContainerId::parse(id)?;
        let bundle = Bundle::load(bundle)?;
        let name = self.store.domain_name(&id);
        let mut plan = plan::plan(&bundle, &self.host, &name)?;
        plan.network.open()?;
        let uuid = new_uuid()?;
        plan.domain.uuid = Some(uuid.clone());
        let guest = match plan.boot {
            Boot::Kernel { .. } => GuestKind::OwnKernel,
            Boot::Init { .. } => GuestKind::RunxInit,
        };
        let dir = self.store.claim(&id)?;
        let _lock = match self.store.lock(&id) {
            Ok(lock) => lock,
            Err(e) => {
                let _ = self.store.remove(&id);
                return Err(e.into());
            }
        };
        let mut state = ContainerState {
            id: id.to_string(),
            status: Status::Creating,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            pid: 0,
            pid_start_time: 0,
            domain_name: name,
            uuid,
            domid: 0,
            guest,
            created_paused: guest.created_paused(self.host.boot_on_create),
            creator: ProcessRef::current(),
            packed_archive: None,
            network: plan.network.clone(),
            vif: !plan.domain.vifs.is_empty(),
            wired: None,
            created: crate::log::now_rfc3339(),
            owner: owner(),
            annotations: bundle.annotations(),
        };
        let made = self
            .store
            .save(&state)
            .map_err(ContainerError::from)
            .and_then(|()| self.make(&mut state, &mut plan, &bundle, &dir, options));
        match made {
            Ok(()) => Ok(state),
            Err(e) => {
                let _ = self.tear_down(&id, &state);
                Err(e)
            }
        }
    }

    /// The steps of `create` after its intent is recorded; each leaves `state` saying what
    /// exists.
    fn make(
        &self,
        state: &mut ContainerState,
        plan: &mut plan::Plan,
        bundle: &Bundle,
        dir: &Path,
        options: &CreateOptions<'_>,
    ) -> Result<(), ContainerError> {
        let step = || match (options.interrupted)() {
            Some(signal) => Err(ContainerError::Interrupted { id: state.id.clone(), signal }),
            None => Ok(()),
        };
        step()?;
        let images = self.write_images(plan, bundle, dir, &mut state.packed_archive);
        if state.packed_archive.is_some() {
            self.store.save(state)?;
        }
        images?;
        step()?;
        let config = dir.join(XL_CONFIG);
        fs::write(&config, plan.domain.render()?).map_err(|source| ContainerError::Io {
            what: "cannot write the xl config",
            path: config.clone(),
            source,
        })?;
        step()?;
        self.xen.create(&config, state.created_paused)?;
        state.domid = self
            .xen
            .find(&state.uuid)?
            .ok_or_else(|| ContainerError::NoDomain { id: state.id.clone(), uuid: state.uuid.clone() })?;
        self.store.save(state)?;
        step()?;

        let monitor_error = |why: String| ContainerError::Monitor { id: state.id.clone(), why };
        let (ready_read, ready_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| monitor_error(e.to_string()))?;
        let guest = Guest { name: &state.domain_name, domid: state.domid, uuid: &state.uuid, kind: state.guest };
        let pid =
            (options.spawn_monitor)(&guest, &state.network, ready_write).map_err(|e| monitor_error(e.to_string()))?;
        state.pid = pid;
        state.pid_start_time = state::process_start_time(pid).unwrap_or(0);
        self.store.save(state)?;
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut fs::File::from(ready_read), &mut answer);
        if answer != "ok" {
            let why = if answer.is_empty() { "it exited before it was ready".to_owned() } else { answer };
            return Err(monitor_error(why));
        }
        step()?;
        if state.vif {
            self.adopt_vif(state)?;
            step()?;
        }
        state.status = Status::Created;
        state.creator = None;
        // The archive is the cache's now: a later start of the same image uses it.
        state.packed_archive = None;
        self.store.save(state)?;
        Ok(())
    }

    /// Removes everything a container has, whatever state it is in: its monitor, its domain
    /// (only the one with its uuid), an archive its unfinished create added to the cache, and its
    /// folder.
    fn tear_down(&self, id: &ContainerId, state: &ContainerState) -> Result<(), ContainerError> {
        if let Some(interface) = &state.wired {
            // Best effort: the engine removes the interface, and with it this, on its own teardown.
            if let Some(namespace) = self.namespace_left(state) {
                let _ = self.net.unwire(namespace.as_fd(), interface);
            }
        }
        let domid = match state.domid {
            0 => self.xen.find(&state.uuid)?,
            domid => Some(domid),
        };
        if let Some(domid) = domid {
            self.xen.destroy(Domain { domid, uuid: &state.uuid })?;
        }
        // The monitor sees its domain go and exits (137); one that does not is killed.
        let deadline = std::time::Instant::now() + MONITOR_GRACE;
        while state::monitor_alive(state) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if state::monitor_alive(state) {
            let _ = kill(Pid::from_raw(state.pid), Signal::SIGKILL);
        }
        if let Some(archive) = &state.packed_archive {
            runx_image::guest::cache::ArchiveCache::discard(archive)?;
        }
        self.store.remove(id)?;
        Ok(())
    }

    fn write_images(
        &self,
        plan: &mut plan::Plan,
        bundle: &Bundle,
        dir: &Path,
        packed: &mut Option<PathBuf>,
    ) -> Result<(), ContainerError> {
        use runx_image::guest;
        let mtime = 0;
        let Boot::Init { initramfs, launch } = &plan.boot else {
            if let Boot::Kernel { kernel, ramdisk } = &plan.boot {
                // Copies, from the files opened in the rootfs: xl must not open the image's
                // names again, and the image's files may change while the guest runs.
                plan.domain.kernel = copy_out(kernel, &dir.join(KERNEL), "cannot copy the container kernel")?;
                if let Some(ramdisk) = ramdisk {
                    plan.domain.ramdisk =
                        Some(copy_out(ramdisk, &dir.join(RAMDISK), "cannot copy the container ramdisk")?);
                }
            }
            return Ok(());
        };
        let spec_archive = dir.join("spec.cpio.gz");
        let shares: Vec<guest::HostShare<'_>> =
            launch.shares.iter().map(|s| guest::HostShare { name: &s.name, host_path: &s.host_path }).collect();
        let out = fs::File::create(&spec_archive).map_err(|source| ContainerError::Io {
            what: "cannot write",
            path: spec_archive.clone(),
            source,
        })?;
        guest::write_spec(&launch.spec, &shares, mtime, std::io::BufWriter::new(out))?;
        let mut parts = vec![initramfs.clone(), spec_archive.clone()];
        let mut in_use = None;
        match launch.spec.rootfs.mode {
            RootfsMode::Initramfs => {
                let root_archive = if self.host.archive_cache_mib > 0 {
                    let cache_dir = self.store.archive_cache_dir();
                    let archive = guest::cache::ArchiveCache::new(cache_dir, self.host.archive_cache_mib << 20)
                        .rootfs_archive(&bundle.rootfs, mtime)?;
                    let path = archive.path().to_owned();
                    if archive.packed() {
                        *packed = Some(path.clone());
                    }
                    // Held until the ramdisk is written: eviction leaves the archive alone meanwhile.
                    in_use = Some(archive);
                    path
                } else {
                    let path = dir.join("rootfs.cpio.gz");
                    let out = fs::File::create(&path).map_err(|source| ContainerError::Io {
                        what: "cannot write",
                        path: path.clone(),
                        source,
                    })?;
                    guest::write_rootfs(&bundle.rootfs, mtime, std::io::BufWriter::new(out))?;
                    path
                };
                let archive_bytes = fs::metadata(&root_archive).map(|m| m.len()).unwrap_or(0);
                parts.push(root_archive);
                let root = RootFootprint::measure(&bundle.rootfs, archive_bytes);
                guest_memory::fit(&mut plan.domain, plan.memory_is_default, root)?;
            }
            RootfsMode::Disk => {
                let image = dir.join(ROOT_IMAGE);
                guest::write_ext4(&bundle.rootfs, &image, 64, mtime)?;
                let access = if launch.spec.rootfs.readonly { "ro" } else { "rw" };
                let vdev = runx_launch::ROOT_DEVICE.trim_start_matches("/dev/");
                plan.domain.disks.push(format!("format=raw, vdev={vdev}, access={access}, target={}", image.display()));
            }
        }
        let ramdisk = dir.join(RAMDISK);
        let parts: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
        guest::concatenate(&parts, &ramdisk)?;
        drop(in_use);
        let _ = fs::remove_file(&spec_archive);
        plan.domain.ramdisk = Some(ramdisk.to_string_lossy().into_owned());
        Ok(())
    }

    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let id = ContainerId::parse(id)?;
        let _lock = self.store.lock(&id)?;
        let mut state = self.store.load(&id)?;
        match self.status(&state) {
            Status::Created => {}
            Status::Stopped => return Err(ContainerError::NotRunning),
            other => return Err(ContainerError::WrongState { action: "start", id: state.id, status: other.as_str() }),
        }
        if state.vif {
            if let Err(e) = self.wire(&mut state) {
                // The process cannot start, so the container stops, as runc's does when its
                // process cannot run: containerd deletes a stopped task, never a created one.
                let _ = self.xen.destroy(Domain { domid: state.domid, uuid: &state.uuid });
                return Err(e);
            }
        }
        let domain = Domain { domid: state.domid, uuid: &state.uuid };
        if let Some((key, value)) = state.guest.start_request(state.domid) {
            self.xen
                .write_for(domain, &key, &value)
                .map_err(|source| ContainerError::Start { id: state.id.clone(), source })?;
        }
        if state.created_paused {
            self.xen.unpause(domain)?;
        }
        state.status = Status::Running;
        self.store.save(&state)?;
        Ok(())
    }

    /// Sends signal `signo` to the container's process; SIGKILL destroys its domain.
    pub fn kill(&self, id: &str, signo: i32) -> Result<(), ContainerError> {
        let (_, state) = self.load(id)?;
        if !matches!(self.status(&state), Status::Created | Status::Running | Status::Paused) {
            return Err(ContainerError::NotRunning);
        }
        let domain = Domain { domid: state.domid, uuid: &state.uuid };
        if signo == Signal::SIGKILL as i32 {
            self.xen.destroy(domain)?;
            return Ok(());
        }
        let (key, value) = state.guest.signal_request(state.domid, signo)?;
        self.xen
            .write_for(domain, &key, &value)
            .map_err(|source| ContainerError::Signal { id: state.id.clone(), source })
    }

    pub fn pause(&self, id: &str, pause: bool) -> Result<(), ContainerError> {
        let id = ContainerId::parse(id)?;
        let _lock = self.store.lock(&id)?;
        let mut state = self.store.load(&id)?;
        let (from, to, action) = if pause {
            (Status::Running, Status::Paused, "pause")
        } else {
            (Status::Paused, Status::Running, "resume")
        };
        let status = self.status(&state);
        if status != from {
            return Err(ContainerError::WrongState { action, id: state.id, status: status.as_str() });
        }
        let domain = Domain { domid: state.domid, uuid: &state.uuid };
        if pause {
            self.xen.pause(domain)?;
        } else {
            self.xen.unpause(domain)?;
        }
        state.status = to;
        self.store.save(&state)?;
        Ok(())
    }

    /// Deletes a stopped (or, like runc, a created) container; `force` also a running one.
    /// A container whose create was killed part-way is stopped: what it made is removed. A
    /// state folder without a readable state is removed with `force`: its create never got as
    /// far as asking Xen for a domain.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let id = ContainerId::parse(id)?;
        let _lock = self.store.lock(&id)?;
        let state = match self.store.load(&id) {
            Ok(state) => state,
            Err(StateError::Corrupt { .. }) if force => {
                self.store.remove(&id)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let status = self.status(&state);
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(ContainerError::NotStopped { id: state.id, status: status.as_str() });
        }
        self.tear_down(&id, &state)
    }

    /// Every container under the root with its current status, and the ids whose state cannot
    /// be read, with why.
    #[allow(clippy::type_complexity)]
    pub fn list(&self) -> Result<(Vec<(ContainerState, Status)>, Vec<(ContainerId, StateError)>), ContainerError> {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for id in self.store.ids()? {
            match self.store.load(&id) {
                Ok(state) => {
                    let status = self.status(&state);
                    good.push((state, status));
                }
                // Deleted between listing and reading.
                Err(StateError::NotFound(_)) => {}
                Err(e) => bad.push((id, e)),
            }
        }
        Ok((good, bad))
    }
}

/// A fresh random uuid for a domain, from the kernel.
fn new_uuid() -> Result<String, ContainerError> {
    let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid").map_err(ContainerError::Uuid)?;
    Ok(uuid.trim().to_owned())
}

/// Copies `from` to a new file `to` (0600), and returns `to` for the xl config.
fn copy_out(from: &fs::File, to: &Path, what: &'static str) -> Result<String, ContainerError> {
    let io = |source| ContainerError::Io { what, path: to.to_owned(), source };
    let mut out = fs::File::options().write(true).create_new(true).mode(0o600).open(to).map_err(io)?;
    std::io::copy(&mut &*from, &mut out).map_err(io)?;
    Ok(to.to_string_lossy().into_owned())
}

fn owner() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name).unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests;
