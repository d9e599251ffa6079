//! The Xen toolstack behind a trait: the domain operations runx needs. `Xl` drives the real
//! `xl` command; tests put a fake `xl` on PATH, or implement the trait.

use std::path::Path;

mod xl;

pub use xl::Xl;

#[derive(Debug, thiserror::Error)]
pub enum ToolstackError {
    #[error("cannot run {command}: {source}: is xl (xen-utils) installed and on PATH?")]
    Spawn { command: String, source: std::io::Error },
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
    #[error("`{command}` printed something runx cannot read: {output:?}")]
    Unreadable { command: String, output: String },
    #[error("cannot find the domid of domain {name} in xenstore: {why}: is xenstored running?")]
    Lookup { name: String, why: String },
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
    pub domid: u32,
    pub paused: bool,
    /// Shut down and kept (`on_poweroff = "preserve"` and friends), and why.
    pub ended: Option<Shutdown>,
    pub dying: bool,
}

pub trait Toolstack {
    /// Creates the domain from an xl config file, paused or running, and returns its domid.
    fn create(&self, config: &Path, name: &str, paused: bool) -> Result<u32, ToolstackError>;
    fn unpause(&self, name: &str) -> Result<(), ToolstackError>;
    fn pause(&self, name: &str) -> Result<(), ToolstackError>;
    /// Destroys the domain; a domain that is already gone is not an error.
    fn destroy(&self, name: &str) -> Result<(), ToolstackError>;
    /// The domain's state, or None when no domain has that name.
    fn state(&self, name: &str) -> Result<Option<DomainState>, ToolstackError>;
}
