//! The lifecycle operations behind runx's verbs, on a state store and a toolstack.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runx_launch::{keys, RootfsMode};
use runx_xenstore::Xenstore;

use crate::bundle::{Bundle, BundleError};
use crate::container_id::{ContainerId, InvalidId};
use crate::guest_signal;
use crate::host_config::HostConfig;
use crate::plan::{self, Boot, PlanError};
use crate::state::{self, ContainerState, StateError, Status, Store};
use crate::toolstack::{Toolstack, ToolstackError};

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
    #[error("cannot build the guest's images: {0}")]
    Image(#[from] runx_tools::guest::GuestImageError),
    #[error("xl config: {0}")]
    XlConfig(#[from] runx_tools::xl::XlError),
    #[error(transparent)]
    Toolstack(#[from] ToolstackError),
    #[error("container not running")]
    NotRunning,
    #[error("cannot {action} container {id} in state {status}")]
    WrongState { action: &'static str, id: String, status: &'static str },
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: &'static str },
    #[error("cannot start container {id}: xenstore: {source}: is xenstored running?")]
    Start { id: String, source: std::io::Error },
    #[error("cannot send signal to container {id}: xenstore: {source}")]
    Signal { id: String, source: std::io::Error },
    #[error(transparent)]
    NotForKernel(#[from] guest_signal::NotForKernel),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the monitor of container {id} did not start: {why}")]
    Monitor { id: String, why: String },
}

pub struct Runtime {
    pub store: Store,
    pub host: HostConfig,
    pub toolstack: Box<dyn Toolstack>,
}

/// What `create` needs beyond the id and the bundle.
pub struct CreateOptions<'a> {
    /// Starts the monitor for a domain: given the guest's name and domid, whether it runs its
    /// own kernel, and the descriptor to report readiness on; returns the monitor's pid.
    pub spawn_monitor: &'a dyn Fn(&str, u32, bool, OwnedFd) -> std::io::Result<i32>,
}

/// Undoes a half-done `create` unless disarmed: destroys the domain, removes the state folder.
struct Rollback<'a> {
    runtime: &'a Runtime,
    id: &'a ContainerId,
    domain: Option<String>,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(name) = &self.domain {
            let _ = self.runtime.toolstack.destroy(name);
        }
        let _ = self.runtime.store.remove(self.id);
    }
}

impl Runtime {
    /// The status as it is now: a container whose monitor is gone has stopped.
    pub fn status(&self, state: &ContainerState) -> Status {
        if state.status == Status::Creating || state::monitor_alive(state) {
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
        let name = id.as_str().to_owned();
        let mut plan = plan::plan(&bundle, &self.host, &name)?;
        let dir = self.store.claim(&id)?;
        let mut rollback = Rollback { runtime: self, id: &id, domain: None, armed: true };
        let _lock = self.store.lock(&id)?;
        self.write_images(&mut plan, &bundle, &dir)?;
        let config = dir.join(XL_CONFIG);
        let io = |what| move |source| ContainerError::Io { what, path: dir.join(XL_CONFIG), source };
        fs::write(&config, plan.domain.render()?).map_err(io("cannot write the xl config"))?;
        rollback.domain = Some(name.clone());
        let own_kernel = matches!(plan.boot, Boot::Kernel { .. });
        // A kernel of the container's own cannot wait for `start`: only Xen can hold it back.
        let created_paused = own_kernel || !self.host.boot_on_create;
        let domid = self.toolstack.create(&config, &name, created_paused)?;

        let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| ContainerError::Monitor { id: name.clone(), why: e.to_string() })?;
        let pid = (options.spawn_monitor)(&name, domid, own_kernel, ready_write)
            .map_err(|e| ContainerError::Monitor { id: name.clone(), why: e.to_string() })?;
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut fs::File::from(ready_read), &mut answer);
        if answer != "ok" {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let why = if answer.is_empty() { "it exited before it was ready".to_owned() } else { answer };
            return Err(ContainerError::Monitor { id: name, why });
        }
        let state = ContainerState {
            id: name.clone(),
            status: Status::Created,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            pid,
            pid_start_time: state::process_start_time(pid).unwrap_or(0),
            domain_name: name,
            domid,
            own_kernel,
            created_paused,
            created: crate::log::now_rfc3339(),
            owner: owner(),
            annotations: bundle.annotations(),
        };
        self.store.save(&state)?;
        rollback.armed = false;
        Ok(state)
    }

    fn write_images(&self, plan: &mut plan::Plan, bundle: &Bundle, dir: &Path) -> Result<(), ContainerError> {
        use runx_tools::guest;
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
                    let cache_dir = HostConfig::archive_cache_dir(self.store.root());
                    let archive = guest::cache::ArchiveCache::new(cache_dir, self.host.archive_cache_mib << 20)
                        .rootfs_archive(&bundle.rootfs, mtime)?;
                    let path = archive.path().to_owned();
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
                parts.push(root_archive);
                if plan.memory_is_default {
                    plan::grow_for_rootfs(&mut plan.domain, &bundle.rootfs);
                }
            }
            RootfsMode::Disk => {
                let image = dir.join(ROOT_IMAGE);
                guest::write_ext4(&bundle.rootfs, &image, 64, mtime)?;
                let access = if launch.spec.rootfs.readonly { "ro" } else { "rw" };
                plan.domain.disks.push(format!("format=raw, vdev=xvda, access={access}, target={}", image.display()));
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
        if !state.own_kernel {
            write_xenstore(&keys::of_domain(state.domid, keys::START), "1")
                .map_err(|source| ContainerError::Start { id: state.id.clone(), source })?;
        }
        if state.created_paused {
            self.toolstack.unpause(&state.domain_name)?;
        }
        state.status = Status::Running;
        self.store.save(&state)?;
        Ok(())
    }

    pub fn kill(&self, id: &str, signal: Signal) -> Result<(), ContainerError> {
        let (_, state) = self.load(id)?;
        if self.status(&state) == Status::Stopped {
            return Err(ContainerError::NotRunning);
        }
        if signal == Signal::SIGKILL {
            self.toolstack.destroy(&state.domain_name)?;
            return Ok(());
        }
        let (key, value) = guest_signal::request(state.domid, state.own_kernel, signal as i32)?;
        write_xenstore(&key, &value).map_err(|source| ContainerError::Signal { id: state.id.clone(), source })
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
        if pause {
            self.toolstack.pause(&state.domain_name)?;
        } else {
            self.toolstack.unpause(&state.domain_name)?;
        }
        state.status = to;
        self.store.save(&state)?;
        Ok(())
    }

    /// Deletes a stopped (or, like runc, a created) container; `force` also a running one.
    /// A corrupt state folder is removed with `force`.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let id = ContainerId::parse(id)?;
        let _lock = self.store.lock(&id)?;
        let state = match self.store.load(&id) {
            Ok(state) => state,
            Err(StateError::Corrupt { .. }) if force => {
                self.toolstack.destroy(id.as_str())?;
                self.store.remove(&id)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let status = self.status(&state);
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(ContainerError::NotStopped { id: state.id, status: status.as_str() });
        }
        self.toolstack.destroy(&state.domain_name)?;
        // The monitor sees its domain go and exits (137); one that does not is killed.
        let deadline = std::time::Instant::now() + MONITOR_GRACE;
        while state::monitor_alive(&state) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if state::monitor_alive(&state) {
            let _ = kill(Pid::from_raw(state.pid), Signal::SIGKILL);
        }
        self.store.remove(&id)?;
        Ok(())
    }

    /// Every container under the root with its current status; unreadable ones are skipped.
    pub fn list(&self) -> Result<Vec<(ContainerState, Status)>, ContainerError> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            if let Ok(state) = self.store.load(&id) {
                let status = self.status(&state);
                out.push((state, status));
            }
        }
        Ok(out)
    }
}

/// Copies `from` to a new file `to` (0600), and returns `to` for the xl config.
fn copy_out(from: &fs::File, to: &Path, what: &'static str) -> Result<String, ContainerError> {
    let io = |source| ContainerError::Io { what, path: to.to_owned(), source };
    let mut out = fs::File::options().write(true).create_new(true).mode(0o600).open(to).map_err(io)?;
    std::io::copy(&mut &*from, &mut out).map_err(io)?;
    Ok(to.to_string_lossy().into_owned())
}

/// One write to xenstored from dom0: how `start` and `kill` reach a guest.
fn write_xenstore(path: &str, value: &str) -> std::io::Result<()> {
    Xenstore::connect()?.write(path, value)
}

fn owner() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name).unwrap_or_else(|| uid.to_string())
}
