//! Everything runx asks of Xen, behind one trait: the toolstack's verbs (`xl`), xenstore, and
//! the console ring. `Xl` is the real thing; tests use an in-memory Xen that can fail any step.
//!
//! A domain is runx's only if its uuid is the one runx gave it at create: every verb that acts
//! on a domain checks that first, so a domain that ended and whose domid or name came to another
//! domain (an admin's VM, another runtime's guest) is never touched.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

use runx_launch::keys;

mod console_ring;
#[cfg(test)]
pub mod memory;
mod xl;

pub use xl::Xl;

#[derive(Debug, thiserror::Error)]
pub enum XenError {
    #[error("cannot run {command}: {source}: is xl (xen-utils) installed and on PATH?")]
    Spawn { command: String, source: io::Error },
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
    #[error("`{command}` printed something runx cannot read: {output:?}")]
    Unreadable { command: String, output: String },
    #[error("xenstore: {0}: is xenstored running?")]
    Xenstore(#[from] io::Error),
    #[error("domain {domid} is not the one runx created (uuid {uuid}): it ended and runx leaves it alone")]
    NotOurs { domid: u32, uuid: String },
}

/// Why a domain shut down: the reason its kernel gave Xen (`SCHEDOP_shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Poweroff,
    Reboot,
    Suspend,
    Crash,
    Watchdog,
    SoftReset,
}

/// How a domain is, as `xl list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainState {
    pub paused: bool,
    /// Shut down and kept (`on_poweroff = "preserve"` and friends), and why.
    pub ended: Option<Shutdown>,
    pub dying: bool,
}

/// A domain runx created: its domid, and the uuid that proves it is still that domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Domain<'a> {
    pub domid: u32,
    pub uuid: &'a str,
}

/// What Xen counts for a running domain (`runx events --stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainUsage {
    /// CPU time of each vcpu the domain has, online or not, in nanoseconds.
    pub vcpu_time_ns: Vec<u64>,
    pub vcpus_online: u32,
    /// The memory the domain has now, and the most it may have (`maxmem`), in KiB.
    pub memory_kib: u64,
    pub max_memory_kib: u64,
}

/// A change to a running domain's resources (`runx update`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adjustment {
    /// The guest's memory target: its balloon driver gives back or takes up the difference.
    MemoryMib(u64),
    /// How many of the domain's vcpus are online.
    Vcpus(u32),
    /// The scheduler's cap, in percent of one CPU.
    CapPercent(u32),
    /// The physical CPUs all vcpus may run on (xl's `cpus` syntax).
    Pin(String),
}

/// A xenstore connection that delivers watch events, for the monitor's poll loop.
pub trait Watch {
    /// The descriptor to poll for events.
    fn fd(&self) -> BorrowedFd<'_>;
    fn watch(&mut self, path: &str, token: &str) -> io::Result<()>;
    /// The path of the next event (blocks until one arrives).
    fn next_event(&mut self) -> io::Result<String>;
    /// Events already received that `fd` will not announce again.
    fn has_queued_events(&self) -> bool;
    fn read(&mut self, path: &str) -> io::Result<Option<String>>;
    fn write(&mut self, path: &str, value: &str) -> io::Result<()>;
}

/// A byte stream each way with a guest (a vchan it offered): never blocks; `fd` becomes readable
/// when the guest has written or read.
pub trait Channel {
    fn fd(&self) -> BorrowedFd<'_>;
    /// Takes a pending event, so that `fd` announces the next one.
    fn handle_event(&self) -> io::Result<()>;
    /// `WouldBlock` when there is nothing; Ok(0) once the guest closed and everything was read.
    fn try_read(&self, out: &mut [u8]) -> io::Result<usize>;
    /// `WouldBlock` when the ring is full; `BrokenPipe` once the guest closed.
    fn try_write(&self, data: &[u8]) -> io::Result<usize>;
}

/// How much of a guest's console output xenconsoled has not taken yet.
pub trait ConsoleRing {
    fn unread(&self) -> u32;
}

/// The primitives; the checked verbs on a `Domain` are built on them below.
pub trait Xen {
    /// Creates a domain from an xl config file (which names its uuid), paused or running.
    fn create(&self, config: &Path, paused: bool) -> Result<(), XenError>;
    fn pause_domid(&self, domid: u32) -> Result<(), XenError>;
    fn unpause_domid(&self, domid: u32) -> Result<(), XenError>;
    /// Destroys the domain; one that is already gone is not an error.
    fn destroy_domid(&self, domid: u32) -> Result<(), XenError>;
    /// The domain's state, or None when there is no such domain.
    fn state_domid(&self, domid: u32) -> Result<Option<DomainState>, XenError>;
    fn read(&self, path: &str) -> Result<Option<String>, XenError>;
    fn write(&self, path: &str, value: &str) -> Result<(), XenError>;
    /// Removes a key and everything under it; a missing one is not an error.
    fn remove(&self, path: &str) -> Result<(), XenError>;
    fn directory(&self, path: &str) -> Result<Vec<String>, XenError>;
    /// What Xen counts for the domain, or None when there is no such domain.
    fn usage_domid(&self, domid: u32) -> Result<Option<DomainUsage>, XenError>;
    fn adjust_domid(&self, domid: u32, adjustment: &Adjustment) -> Result<(), XenError>;
    /// A connection of its own for watches.
    fn watcher(&self) -> io::Result<Box<dyn Watch>>;
    /// Connects to the vchan domain `domid` offered (its shared page's grant and its port).
    fn channel(&self, domid: u32, ring_ref: u32, port: u32) -> io::Result<Box<dyn Channel>>;
    /// The console ring of a guest, mapped read-only.
    fn console_ring(&self, domid: u32, frame: u64) -> io::Result<Box<dyn ConsoleRing>>;

    /// Whether `domain.domid` is still the domain with `domain.uuid`.
    fn owns(&self, domain: Domain<'_>) -> Result<bool, XenError> {
        Ok(self.read(&keys::of_domain(domain.domid, "vm"))?.as_deref() == Some(vm_path(domain.uuid).as_str()))
    }

    /// The domid of the domain with this uuid, if there is one.
    fn find(&self, uuid: &str) -> Result<Option<u32>, XenError> {
        let want = vm_path(uuid);
        for entry in self.directory("/local/domain")? {
            let Ok(domid) = entry.parse::<u32>() else { continue };
            if self.read(&keys::of_domain(domid, "vm"))?.as_deref() == Some(want.as_str()) {
                return Ok(Some(domid));
            }
        }
        Ok(None)
    }

    fn pause(&self, domain: Domain<'_>) -> Result<(), XenError> {
        self.checked(domain)?;
        self.pause_domid(domain.domid)
    }

    fn unpause(&self, domain: Domain<'_>) -> Result<(), XenError> {
        self.checked(domain)?;
        self.unpause_domid(domain.domid)
    }

    /// Destroys the domain if it is still runx's; gone or someone else's is not an error.
    fn destroy(&self, domain: Domain<'_>) -> Result<(), XenError> {
        if self.owns(domain)? {
            self.destroy_domid(domain.domid)?;
        }
        Ok(())
    }

    /// The domain's state, or None when it is gone (or no longer runx's).
    fn state(&self, domain: Domain<'_>) -> Result<Option<DomainState>, XenError> {
        if !self.owns(domain)? {
            return Ok(None);
        }
        self.state_domid(domain.domid)
    }

    /// What Xen counts for the domain, or None when it is gone (or no longer runx's).
    fn usage(&self, domain: Domain<'_>) -> Result<Option<DomainUsage>, XenError> {
        if !self.owns(domain)? {
            return Ok(None);
        }
        self.usage_domid(domain.domid)
    }

    fn adjust(&self, domain: Domain<'_>, adjustment: &Adjustment) -> Result<(), XenError> {
        self.checked(domain)?;
        self.adjust_domid(domain.domid, adjustment)
    }

    /// Writes a key for the domain's guest if the domain is still runx's.
    fn write_for(&self, domain: Domain<'_>, path: &str, value: &str) -> Result<(), XenError> {
        self.checked(domain)?;
        self.write(path, value)
    }

    fn checked(&self, domain: Domain<'_>) -> Result<(), XenError> {
        if self.owns(domain)? {
            Ok(())
        } else {
            Err(XenError::NotOurs { domid: domain.domid, uuid: domain.uuid.to_owned() })
        }
    }
}

/// What libxl writes as a domain's `vm` key: its path under /vm, named by its uuid.
pub fn vm_path(uuid: &str) -> String {
    format!("/vm/{uuid}")
}
