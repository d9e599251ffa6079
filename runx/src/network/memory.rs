//! `Net` in memory, for tests: it records what it was asked, answers `facts` with what the
//! test set, and fails the call a test names.

use std::cell::RefCell;
use std::io;
use std::os::fd::BorrowedFd;
use std::rc::Rc;

use super::{Facts, Net, NetError};

#[derive(Clone, Default)]
pub struct MemoryNet {
    pub facts: Rc<RefCell<Facts>>,
    /// Every call, e.g. `adopt vif3.0`, `wire vif3.0 eth0 1500`, `unwire eth0`.
    pub calls: Rc<RefCell<Vec<String>>>,
    /// The call (its first word) that fails.
    pub fail: Rc<RefCell<Option<&'static str>>>,
}

impl MemoryNet {
    fn call(&self, call: String) -> Result<(), NetError> {
        let verb = call.split(' ').next().unwrap_or_default().to_owned();
        self.calls.borrow_mut().push(call);
        match *self.fail.borrow() {
            Some(failing) if failing == verb => {
                Err(NetError::Kernel { what: verb, source: io::Error::from_raw_os_error(nix::libc::EPERM) })
            }
            _ => Ok(()),
        }
    }
}

impl Net for MemoryNet {
    fn facts(&self, _: BorrowedFd<'_>) -> Result<Facts, NetError> {
        self.call("facts".into())?;
        Ok(self.facts.borrow().clone())
    }

    fn adopt(&self, vif: &str, _: BorrowedFd<'_>) -> Result<(), NetError> {
        self.call(format!("adopt {vif}"))
    }

    fn wire(&self, _: BorrowedFd<'_>, vif: &str, interface: &str, mtu: u32) -> Result<(), NetError> {
        self.call(format!("wire {vif} {interface} {mtu}"))
    }

    fn unwire(&self, _: BorrowedFd<'_>, interface: &str) -> Result<(), NetError> {
        self.call(format!("unwire {interface}"))
    }
}
