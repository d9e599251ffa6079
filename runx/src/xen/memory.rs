//! An in-memory Xen for the runtime's tests: domains, a xenstore, fake monitors, and a fault
//! at any call: an error (Xen said no) or an unwind that stands for the runtime being killed
//! there (nothing after it runs, no rollback).
//!
//! The monitor's relay (watches, console) is exercised by the CLI tests' fake xenstored; here
//! `watcher` and `console_ring` say they are not modelled.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;

use runx_launch::keys;

use super::{vm_path, Adjustment, Channel, ConsoleRing, DomainState, DomainUsage, Watch, Xen, XenError};

/// The unwind payload of a simulated kill.
#[derive(Debug)]
pub struct Killed;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDomain {
    pub name: String,
    pub uuid: String,
    pub paused: bool,
    /// As created: 256 MiB and 2 vcpus, both online, each with a second of CPU time.
    pub usage: DomainUsage,
    pub cap: Option<u32>,
    pub pinned: Option<String>,
}

#[derive(Default)]
struct Inner {
    store: BTreeMap<String, String>,
    domains: BTreeMap<u32, FakeDomain>,
    next_domid: u32,
    calls: usize,
    fail_at: Option<usize>,
    kill_at: Option<usize>,
    /// `create` makes the domain and then fails, as libxl can when a device will not attach.
    create_fails_after_building: bool,
    monitors: BTreeMap<u32, Child>,
}

/// Cheap to clone: the clones share one Xen, so a test keeps one while the runtime owns another.
#[derive(Clone)]
pub struct MemoryXen(Rc<RefCell<Inner>>);

impl Default for MemoryXen {
    fn default() -> Self {
        let mut inner = Inner::default();
        inner.next_domid = 1; // domid 0 is dom0
        Self(Rc::new(RefCell::new(inner)))
    }
}

impl MemoryXen {
    /// Call number `n` (0-based, counting every call to the primitives) fails.
    pub fn fail_at(&self, n: usize) {
        self.0.borrow_mut().fail_at = Some(n);
    }

    /// The runtime is killed at call number `n`.
    pub fn kill_at(&self, n: usize) {
        self.0.borrow_mut().kill_at = Some(n);
    }

    pub fn create_fails_after_building(&self) {
        self.0.borrow_mut().create_fails_after_building = true;
    }

    pub fn clear_faults(&self) {
        let mut inner = self.0.borrow_mut();
        inner.fail_at = None;
        inner.kill_at = None;
        inner.create_fails_after_building = false;
    }

    pub fn calls(&self) -> usize {
        self.0.borrow().calls
    }

    pub fn domains(&self) -> BTreeMap<u32, FakeDomain> {
        self.0.borrow().domains.clone()
    }

    /// A domain that is not runx's (an admin's VM), with the next domid.
    pub fn add_domain(&self, name: &str) -> u32 {
        self.build(name, &format!("admin-{name}"), false)
    }

    pub fn key(&self, path: &str) -> Option<String> {
        self.0.borrow().store.get(path).cloned()
    }

    /// Stands for the monitor: a process that lives until its domain is destroyed. Reports
    /// readiness on `ready`.
    pub fn spawn_monitor(&self, domid: u32, ready: OwnedFd) -> io::Result<i32> {
        let child = Command::new("sleep").arg("600").stdin(Stdio::null()).spawn()?;
        let pid = child.id() as i32;
        self.0.borrow_mut().monitors.insert(domid, child);
        io::Write::write_all(&mut std::fs::File::from(ready), b"ok")?;
        Ok(pid)
    }

    fn build(&self, name: &str, uuid: &str, paused: bool) -> u32 {
        let mut inner = self.0.borrow_mut();
        let domid = inner.next_domid;
        inner.next_domid += 1;
        let usage = DomainUsage {
            vcpu_time_ns: vec![1_000_000_000; 2],
            vcpus_online: 2,
            memory_kib: 256 << 10,
            max_memory_kib: 256 << 10,
        };
        let domain =
            FakeDomain { name: name.to_owned(), uuid: uuid.to_owned(), paused, usage, cap: None, pinned: None };
        inner.domains.insert(domid, domain);
        inner.store.insert(keys::of_domain(domid, "name"), name.to_owned());
        inner.store.insert(keys::of_domain(domid, "vm"), vm_path(uuid));
        domid
    }

    /// Counts a call and applies the fault set for it.
    fn call(&self, what: &str) -> Result<(), XenError> {
        let mut inner = self.0.borrow_mut();
        let n = inner.calls;
        inner.calls += 1;
        if inner.kill_at == Some(n) {
            drop(inner);
            std::panic::resume_unwind(Box::new(Killed));
        }
        if inner.fail_at == Some(n) {
            return Err(XenError::Failed { command: what.to_owned(), message: format!("injected fault at call {n}") });
        }
        Ok(())
    }

    fn gone(&self, domid: u32) -> Result<(), XenError> {
        if self.0.borrow().domains.contains_key(&domid) {
            Ok(())
        } else {
            Err(XenError::Failed { command: format!("xl {domid}"), message: "invalid domain identifier".into() })
        }
    }
}

/// `key = "value"` settings of an xl config.
fn setting(config: &str, key: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}

impl Xen for MemoryXen {
    fn create(&self, config: &Path, paused: bool) -> Result<(), XenError> {
        self.call("xl create")?;
        let text = std::fs::read_to_string(config)?;
        let name = setting(&text, "name").unwrap_or_default();
        let uuid = setting(&text, "uuid").unwrap_or_default();
        if self.0.borrow().domains.values().any(|d| d.name == name) {
            let message = format!("domain with name {name} already exists");
            return Err(XenError::Failed { command: "xl create".into(), message });
        }
        self.build(&name, &uuid, paused);
        if self.0.borrow().create_fails_after_building {
            return Err(XenError::Failed { command: "xl create".into(), message: "unable to add disk devices".into() });
        }
        Ok(())
    }

    fn pause_domid(&self, domid: u32) -> Result<(), XenError> {
        self.call("xl pause")?;
        self.gone(domid)?;
        self.0.borrow_mut().domains.get_mut(&domid).expect("checked").paused = true;
        Ok(())
    }

    fn unpause_domid(&self, domid: u32) -> Result<(), XenError> {
        self.call("xl unpause")?;
        self.gone(domid)?;
        self.0.borrow_mut().domains.get_mut(&domid).expect("checked").paused = false;
        Ok(())
    }

    fn destroy_domid(&self, domid: u32) -> Result<(), XenError> {
        self.call("xl destroy")?;
        let mut inner = self.0.borrow_mut();
        inner.domains.remove(&domid);
        let prefix = keys::of_domain(domid, "");
        inner.store.retain(|k, _| !k.starts_with(&prefix));
        if let Some(mut monitor) = inner.monitors.remove(&domid) {
            let _ = monitor.kill();
            let _ = monitor.wait();
        }
        Ok(())
    }

    fn state_domid(&self, domid: u32) -> Result<Option<DomainState>, XenError> {
        self.call("xl list")?;
        Ok(self.0.borrow().domains.get(&domid).map(|d| DomainState { paused: d.paused, ended: None, dying: false }))
    }

    fn usage_domid(&self, domid: u32) -> Result<Option<DomainUsage>, XenError> {
        self.call("xl list")?;
        Ok(self.0.borrow().domains.get(&domid).map(|d| d.usage.clone()))
    }

    fn adjust_domid(&self, domid: u32, adjustment: &Adjustment) -> Result<(), XenError> {
        self.call("xl adjust")?;
        self.gone(domid)?;
        let mut inner = self.0.borrow_mut();
        let domain = inner.domains.get_mut(&domid).expect("checked");
        match adjustment {
            Adjustment::MemoryMib(mib) => domain.usage.memory_kib = mib << 10,
            Adjustment::Vcpus(count) => domain.usage.vcpus_online = *count,
            Adjustment::CapPercent(cap) => domain.cap = Some(*cap),
            Adjustment::Pin(cpus) => domain.pinned = Some(cpus.clone()),
        }
        Ok(())
    }

    fn read(&self, path: &str) -> Result<Option<String>, XenError> {
        self.call("xenstore read")?;
        Ok(self.0.borrow().store.get(path).cloned())
    }

    fn write(&self, path: &str, value: &str) -> Result<(), XenError> {
        self.call("xenstore write")?;
        self.0.borrow_mut().store.insert(path.to_owned(), value.to_owned());
        Ok(())
    }

    fn remove(&self, path: &str) -> Result<(), XenError> {
        self.call("xenstore rm")?;
        let prefix = format!("{path}/");
        self.0.borrow_mut().store.retain(|k, _| k != path && !k.starts_with(&prefix));
        Ok(())
    }

    fn directory(&self, path: &str) -> Result<Vec<String>, XenError> {
        self.call("xenstore directory")?;
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut children: Vec<String> = self
            .0
            .borrow()
            .store
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix)?.split('/').next().map(str::to_owned))
            .collect();
        children.dedup();
        Ok(children)
    }

    fn watcher(&self) -> io::Result<Box<dyn Watch>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "the in-memory Xen has no watches"))
    }

    fn channel(&self, _domid: u32, _ring_ref: u32, _port: u32) -> io::Result<Box<dyn Channel>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "the in-memory Xen has no vchans"))
    }

    fn console_ring(&self, _domid: u32, _frame: u64) -> io::Result<Box<dyn ConsoleRing>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "the in-memory Xen has no console rings"))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for monitor in self.monitors.values_mut() {
            let _ = monitor.kill();
            let _ = monitor.wait();
        }
    }
}
