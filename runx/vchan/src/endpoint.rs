//! One side of a vchan: reads one ring, writes the other, and kicks the peer only when the peer
//! asked for it, as libxenvchan does.
//!
//! A side that finds too little to read (or too little room to write) sets a bit in the peer's
//! notify byte ("kick me when you write", "... when you read") and looks again; a side that has
//! written (or read) clears that bit and kicks if it was set. Full fences around both make sure
//! one of the two sees the other's move: either the asker sees the new index, or the mover sees
//! the request.
//!
//! The non-blocking calls (`try_read`, `try_write`, `handle_event`, the descriptor through
//! `AsRawFd`) are for poll loops; `io::Read` and `io::Write` block on the event channel.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::addr_of;
use std::sync::atomic::{fence, AtomicU8, Ordering};

use crate::layout::{self, Interface, Orders, LIVE_WAITING, NOTIFY_READ, NOTIFY_WRITE};
use crate::notify::Notify;
use crate::region::Memory;
use crate::ring::Ring;

/// One side of a vchan, over the shared pages it maps and the doorbell `N` (`Vchan` over Xen's
/// devices). Dropping it clears its live flag and kicks the peer; the pages are unmapped.
pub struct Endpoint<N: Notify> {
    interface: *const Interface,
    read: Ring,
    write: Ring,
    server: bool,
    // Unmapped before the event channel is closed, so that the kernel's unmap notification
    // can still kick the peer through it.
    memory: Memory,
    notify: N,
}

// SAFETY: the pointers are into `memory`, which the endpoint owns; nothing else in this process
// uses them. Not `Sync`: one thread at a time reads, writes and waits.
unsafe impl<N: Notify + Send> Send for Endpoint<N> {}

impl<N: Notify> Endpoint<N> {
    /// The server's side, over fresh pages: writes the shared page's header and grant list.
    /// The client can connect once the caller has published the page's grant and the port.
    pub(crate) fn offer(memory: Memory, orders: Orders, grants: &[u32], notify: N) -> io::Result<Self> {
        let endpoint = Self::new(memory, orders, true, notify)?;
        let shared = endpoint.interface();
        for (i, &grant) in grants.iter().take(orders.grants()).enumerate() {
            // SAFETY: `i` is below `orders.grants()`, and `new` checked the orders.
            unsafe { layout::grant(endpoint.memory.page(), i) }.store(grant, Ordering::Relaxed);
        }
        for ring in [&shared.left, &shared.right] {
            ring.cons.store(0, Ordering::Relaxed);
            ring.prod.store(0, Ordering::Relaxed);
        }
        shared.left_order.store(orders.left.into(), Ordering::Relaxed);
        shared.right_order.store(orders.right.into(), Ordering::Relaxed);
        shared.cli_notify.store(NOTIFY_WRITE, Ordering::Relaxed);
        shared.srv_notify.store(0, Ordering::Relaxed);
        shared.cli_live.store(LIVE_WAITING, Ordering::Relaxed);
        shared.srv_live.store(1, Ordering::SeqCst);
        Ok(endpoint)
    }

    /// The client's side, over the server's mapped pages (`orders` read from them): marks the
    /// client connected and wakes the server.
    pub(crate) fn accept(memory: Memory, orders: Orders, notify: N) -> io::Result<Self> {
        let endpoint = Self::new(memory, orders, false, notify)?;
        endpoint.interface().srv_notify.store(NOTIFY_WRITE, Ordering::SeqCst);
        endpoint.interface().cli_live.store(1, Ordering::SeqCst);
        endpoint.notify.notify()?;
        Ok(endpoint)
    }

    fn new(memory: Memory, orders: Orders, server: bool, notify: N) -> io::Result<Self> {
        orders.check()?;
        let interface = memory.page().cast::<Interface>().cast_const();
        // SAFETY: the page and the rings are mapped as long as `memory` lives, which is as long
        // as the endpoint; `Memory::new` checked each ring's mapping fits its order.
        let (left, right) = unsafe {
            (
                Ring::new(addr_of!((*interface).left), memory.left_ring(), orders.left),
                Ring::new(addr_of!((*interface).right), memory.right_ring(), orders.right),
            )
        };
        let (read, write) = if server { (left, right) } else { (right, left) };
        Ok(Endpoint { interface, read, write, server, memory, notify })
    }

    fn interface(&self) -> &Interface {
        // SAFETY: mapped as long as `memory` lives.
        unsafe { &*self.interface }
    }

    fn own_live(&self) -> &AtomicU8 {
        if self.server {
            &self.interface().srv_live
        } else {
            &self.interface().cli_live
        }
    }

    fn peer_live(&self) -> &AtomicU8 {
        if self.server {
            &self.interface().cli_live
        } else {
            &self.interface().srv_live
        }
    }

    /// The byte in which this side asks the peer for kicks.
    fn own_requests(&self) -> &AtomicU8 {
        if self.server {
            &self.interface().cli_notify
        } else {
            &self.interface().srv_notify
        }
    }

    /// The byte in which the peer asks this side for kicks.
    fn peer_requests(&self) -> &AtomicU8 {
        if self.server {
            &self.interface().srv_notify
        } else {
            &self.interface().cli_notify
        }
    }

    /// Asks the peer for a kick when it next does `bit`; the caller looks at the indexes again
    /// after this.
    fn request(&self, bit: u8) {
        self.own_requests().fetch_or(bit, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Kicks the peer if it asked to hear of `bit`, which this side has just done.
    fn kick_if_asked(&self, bit: u8) -> io::Result<()> {
        fence(Ordering::SeqCst);
        if self.peer_requests().fetch_and(!bit, Ordering::SeqCst) & bit != 0 {
            self.notify.notify()
        } else {
            Ok(())
        }
    }

    /// Whether the peer is there (or, for the server, has not connected yet). Once it is gone,
    /// what it wrote before can still be read.
    pub fn is_open(&self) -> bool {
        self.peer_live().load(Ordering::Acquire) != 0
    }

    /// The bytes there are to read; the peer kicks on its next write.
    pub fn data_ready(&self) -> usize {
        self.request(NOTIFY_WRITE);
        self.read.ready()
    }

    /// The bytes that can be written without blocking; the peer kicks on its next read.
    pub fn buffer_space(&self) -> usize {
        self.request(NOTIFY_READ);
        self.write.space()
    }

    /// Writes as much of `data` as fits, without blocking: `WouldBlock` when nothing does (the
    /// peer kicks when it has read), `BrokenPipe` once the peer has gone.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if !self.is_open() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut space = self.write.space();
        if space < data.len() {
            self.request(NOTIFY_READ);
            space = self.write.space();
        }
        let len = space.min(data.len());
        if len == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.write.push(&data[..len]);
        self.kick_if_asked(NOTIFY_WRITE)?;
        Ok(len)
    }

    /// Reads what there is, up to `out.len()`, without blocking: `WouldBlock` when there is
    /// nothing (the peer kicks when it has written), `Ok(0)` once the peer has gone and all it
    /// wrote has been read.
    pub fn try_read(&self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // Before the indexes: a peer seen gone here has published all it wrote.
        let open = self.is_open();
        let mut ready = self.read.ready();
        if ready < out.len() {
            self.request(NOTIFY_WRITE);
            ready = self.read.ready();
        }
        let len = ready.min(out.len());
        if len == 0 {
            return if open { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(0) };
        }
        self.read.pull(&mut out[..len]);
        self.kick_if_asked(NOTIFY_READ)?;
        Ok(len)
    }

    /// Consumes a pending kick from the peer, if any, without blocking, and re-arms the event
    /// channel: for a poll loop, when the descriptor polls readable. `true` if there was one.
    pub fn handle_event(&self) -> io::Result<bool> {
        self.notify.take()
    }

    /// Blocks until the peer kicks.
    fn wait(&self) -> io::Result<()> {
        while !self.notify.take()? {
            let mut poll = libc::pollfd { fd: self.notify.fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Runs a non-blocking call until it does not answer `WouldBlock`, waiting for kicks.
    fn blocking(&self, mut call: impl FnMut(&Self) -> io::Result<usize>) -> io::Result<usize> {
        loop {
            match call(self) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait()?,
                done => return done,
            }
        }
    }
}

/// Blocks until there is something to read; `Ok(0)` once the peer has gone and all it wrote
/// has been read.
impl<N: Notify> io::Read for Endpoint<N> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.blocking(|endpoint| endpoint.try_read(out))
    }
}

/// Blocks until there is room for some of the bytes; `BrokenPipe` once the peer has gone.
impl<N: Notify> io::Write for Endpoint<N> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.blocking(|endpoint| endpoint.try_write(data))
    }

    /// Nothing to do: written bytes are in the ring, for the peer to read.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The event channel's descriptor: readable when the peer has kicked (see `handle_event`).
impl<N: Notify> AsRawFd for Endpoint<N> {
    fn as_raw_fd(&self) -> RawFd {
        self.notify.fd()
    }
}

/// Tells the peer this side has gone; what it wrote stays readable until the peer unmaps.
impl<N: Notify> Drop for Endpoint<N> {
    fn drop(&mut self) {
        self.own_live().store(0, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // Nothing to do about a failed kick: the kernel's unmap notification kicks again.
        let _ = self.notify.notify();
    }
}
