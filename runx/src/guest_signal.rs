//! How a signal reaches a container's guest. runx-init reads the signal key and signals the
//! process; a kernel of its own knows only Xen's shutdown request (`control/shutdown`, what
//! `xl shutdown` writes, which Linux and most Xen guests honour), so SIGTERM, SIGINT and SIGPWR
//! ask it to power off.

use nix::sys::signal::Signal;
use runx_launch::keys;

/// Xen's shutdown request key of a domain.
const CONTROL_SHUTDOWN: &str = "control/shutdown";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("signal {0} has no meaning for a container's own kernel: SIGTERM, SIGINT or SIGPWR ask it to power off, SIGKILL destroys it")]
pub struct NotForKernel(pub i32);

/// The xenstore key to write, and its value, to deliver signal `signo`.
pub fn request(domid: u32, own_kernel: bool, signo: i32) -> Result<(String, String), NotForKernel> {
    if !own_kernel {
        return Ok((keys::of_domain(domid, keys::SIGNAL), signo.to_string()));
    }
    match Signal::try_from(signo) {
        Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGPWR) => {
            Ok((keys::of_domain(domid, CONTROL_SHUTDOWN), "poweroff".to_owned()))
        }
        _ => Err(NotForKernel(signo)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runx_init_gets_every_signal_a_kernel_only_a_shutdown_request() {
        assert_eq!(request(7, false, 10).unwrap(), ("/local/domain/7/data/runx/signal".into(), "10".into()));
        assert_eq!(request(7, true, 15).unwrap(), ("/local/domain/7/control/shutdown".into(), "poweroff".into()));
        assert_eq!(request(7, true, 10), Err(NotForKernel(10)));
    }
}
