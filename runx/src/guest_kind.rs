//! The two kinds of guest runx runs, and what differs between them: how the process starts,
//! how signals reach it, how its exit status is known, and whether the domain is created paused.
//!
//! runx-init reads runx's xenstore keys: it waits for `start`, signals the process with any
//! signal and reports its exit status. A kernel of the container's own knows only Xen: it is
//! held paused until `start`, understands only the shutdown request (`control/shutdown`, what
//! `xl shutdown` writes, which Linux and most Xen guests honour) and tells how it ended by the
//! reason it shut down for.

use nix::sys::signal::Signal;
use runx_launch::keys;
use serde::{Deserialize, Serialize};

use crate::xen::Shutdown;

/// Xen's shutdown request key of a domain.
const CONTROL_SHUTDOWN: &str = "control/shutdown";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("signal {0} has no meaning for a container's own kernel: SIGTERM, SIGINT or SIGPWR ask it to power off, SIGKILL destroys it")]
pub struct NotForKernel(pub i32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GuestKind {
    /// The host's guest kernel with runx-init as PID 1, which runs the container's process.
    RunxInit,
    /// The container's own kernel, booted directly with the process args as its command line.
    OwnKernel,
}

impl GuestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::RunxInit => "runx-init",
            GuestKind::OwnKernel => "own-kernel",
        }
    }

    /// Whether `create` keeps the domain paused until `start`. runx-init may boot at create and
    /// wait for `start` itself (`boot_on_create`); a kernel of its own cannot wait.
    pub fn created_paused(self, boot_on_create: bool) -> bool {
        match self {
            GuestKind::RunxInit => !boot_on_create,
            GuestKind::OwnKernel => true,
        }
    }

    /// The xenstore write that tells the guest to start the process, if it needs one.
    pub fn start_request(self, domid: u32) -> Option<(String, String)> {
        match self {
            GuestKind::RunxInit => Some((keys::of_domain(domid, keys::START), "1".to_owned())),
            GuestKind::OwnKernel => None,
        }
    }

    /// The xenstore key to write, and its value, to deliver signal `signo`.
    pub fn signal_request(self, domid: u32, signo: i32) -> Result<(String, String), NotForKernel> {
        if self == GuestKind::RunxInit {
            return Ok((keys::of_domain(domid, keys::SIGNAL), signo.to_string()));
        }
        match Signal::try_from(signo) {
            Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGPWR) => {
                Ok((keys::of_domain(domid, CONTROL_SHUTDOWN), "poweroff".to_owned()))
            }
            _ => Err(NotForKernel(signo)),
        }
    }

    /// Whether the monitor passes `signo` on: a kernel's console has no window size to update.
    pub fn forwards(self, signo: i32) -> bool {
        !(self == GuestKind::OwnKernel && signo == Signal::SIGWINCH as i32)
    }

    /// The process's exit status: what runx-init reported, or for a kernel of its own, how its
    /// domain ended (powered off is success, a reboot or a watchdog expiry are told apart from
    /// a crash). None when the guest ended without saying.
    pub fn exit_status(self, reported: Option<i32>, ended: Option<Shutdown>) -> Option<i32> {
        match self {
            GuestKind::RunxInit => reported,
            GuestKind::OwnKernel => reported.or(match ended? {
                Shutdown::Poweroff => Some(0),
                Shutdown::Reboot => Some(1),
                Shutdown::Watchdog => Some(2),
                Shutdown::Crash | Shutdown::Suspend | Shutdown::SoftReset => None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runx_init_gets_every_signal_a_kernel_only_a_shutdown_request() {
        let init = GuestKind::RunxInit.signal_request(7, 10).unwrap();
        assert_eq!(init, ("/local/domain/7/data/runx/signal".into(), "10".into()));
        let kernel = GuestKind::OwnKernel.signal_request(7, 15).unwrap();
        assert_eq!(kernel, ("/local/domain/7/control/shutdown".into(), "poweroff".into()));
        assert_eq!(GuestKind::OwnKernel.signal_request(7, 10), Err(NotForKernel(10)));
        assert!(GuestKind::RunxInit.forwards(Signal::SIGWINCH as i32));
        assert!(!GuestKind::OwnKernel.forwards(Signal::SIGWINCH as i32));
    }

    #[test]
    fn a_kernel_exit_status_says_how_its_domain_ended() {
        let kernel = GuestKind::OwnKernel;
        assert_eq!(kernel.exit_status(None, Some(Shutdown::Poweroff)), Some(0));
        assert_eq!(kernel.exit_status(None, Some(Shutdown::Reboot)), Some(1));
        assert_eq!(kernel.exit_status(None, Some(Shutdown::Watchdog)), Some(2));
        assert_eq!(kernel.exit_status(None, Some(Shutdown::Crash)), None);
        assert_eq!(GuestKind::RunxInit.exit_status(None, Some(Shutdown::Poweroff)), None);
        assert_eq!(GuestKind::RunxInit.exit_status(Some(42), Some(Shutdown::Poweroff)), Some(42));
    }

    #[test]
    fn only_runx_init_boots_before_start() {
        assert!(!GuestKind::RunxInit.created_paused(true));
        assert!(GuestKind::RunxInit.created_paused(false));
        assert!(GuestKind::OwnKernel.created_paused(true));
        assert!(GuestKind::OwnKernel.start_request(3).is_none());
    }
}
