//! The doorbell between the two sides, as a trait: a Xen event channel in a real vchan
//! (`EventChannel`), anything that can kick and be polled in the tests, so the protocol runs
//! in one process without Xen.

use std::io;
use std::os::fd::RawFd;

/// How an endpoint kicks its peer and learns of the peer's kicks.
pub trait Notify {
    /// Kicks the peer.
    fn notify(&self) -> io::Result<()>;

    /// Consumes a kick from the peer if one is pending, without blocking, and re-arms for the
    /// next: `true` if there was one.
    fn take(&self) -> io::Result<bool>;

    /// A descriptor that polls readable while a kick is pending.
    fn fd(&self) -> RawFd;
}
