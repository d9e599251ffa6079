//! Xen's vchan: a byte stream each way between two domains over granted shared pages and an
//! event channel, laid out and driven exactly as libxenvchan does, so that either side can be
//! libxenvchan (or a tool built on it, like `vchan-socket-proxy`).
//!
//! runx relays a container process's stdio between the guest and the host runtime with it. The
//! guest's PID 1 is the server (`Vchan::serve`: gntalloc pages, an unbound port); the runtime in
//! dom0 is the client (`Vchan::connect`: gntdev mappings, an interdomain binding). Publishing
//! the server's `Offer` (in xenstore, say) is the caller's.
//!
//! In-tree because no crate does this without libxenvchan itself, and the guest's side has to
//! fit runx-init's 512 KiB: no dependency but libc, nothing formatted outside of errors.
//!
//! Reads and writes are partial and never block (`try_read`, `try_write`: `WouldBlock` when
//! there is nothing to do); `io::Read` and `io::Write` block on the event channel. A poll loop
//! polls the endpoint's descriptor (`AsRawFd`) with its other descriptors: a `WouldBlock` (or a
//! partial write) has asked the peer to kick, which makes it readable; then `handle_event` and
//! try again. A side that has gone reads as the end of the stream once its bytes are read, and
//! fails writes with `BrokenPipe`.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use runx_vchan::{Orders, Vchan};
//!
//! # fn main() -> std::io::Result<()> {
//! // The guest offers dom0 a 4 KiB ring in and a 64 KiB ring out, and publishes the offer.
//! let (mut guest, offer) = Vchan::serve(0, Orders { left: 12, right: 16 })?;
//! // dom0 connects to the guest (domain 7 here) with the offer it read.
//! let mut host = Vchan::connect(7, offer)?;
//! guest.write_all(b"hello")?;
//! let mut hello = [0; 5];
//! host.read_exact(&mut hello)?;
//! # Ok(())
//! # }
//! ```
//!
//! The protocol is device-independent (`Endpoint` over a `Notify`), so the tests run two sides
//! in one process over a memfd and eventfds.

mod client;
mod endpoint;
mod evtchn;
mod gntalloc;
mod gntdev;
mod layout;
mod notify;
mod region;
mod ring;
mod server;
mod sys;

#[cfg(test)]
mod loopback;
#[cfg(test)]
mod tests;

pub use endpoint::Endpoint;
pub use evtchn::EventChannel;
pub use layout::{Orders, MAX_ORDER, MIN_ORDER};
pub use notify::Notify;
pub use server::Offer;

/// A vchan over Xen's devices.
pub type Vchan = Endpoint<EventChannel>;
