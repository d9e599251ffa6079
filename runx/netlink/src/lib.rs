//! A small rtnetlink (`NETLINK_ROUTE`) client over a raw socket, for runx's two sides: runx-init
//! names, addresses and routes the guest's interface; the host runtime reads a container's
//! network namespace and wires a vif to the container's interface with tc.
//!
//! In-tree because no crate fits runx-init's 512 KiB budget, and `netlink-packet-route`'s
//! current versions need rustc 1.77 (the workspace builds with 1.75).
//!
//! Every request asks for an ack and fails with the kernel's errno. The guest's calls
//! (`link_index`, `set_link`, `add_address`, `add_route`) format nothing and share one writer and
//! one exchange; the host's dumps and tc messages are functions of their own, which LTO leaves
//! out of the guest's binary.

mod address;
mod link;
mod message;
mod route;
mod tc;

use std::cell::Cell;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use address::Address;
pub use link::{Link, LinkChange};
pub use route::{Route, RouteChange};

use message::{Message, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR};

/// Large enough for any one datagram of a dump: the kernel sizes them to the reader's buffer,
/// up to 32 KiB.
const RECV_BUFFER: usize = 32 * 1024;

/// How often a dump is started again when the kernel says the objects changed during it.
const DUMP_TRIES: usize = 5;

/// A `NETLINK_ROUTE` socket. It stays in the network namespace the calling thread was in at
/// `open`, whatever the thread does afterwards, so the host can `setns` in, open, and go back.
pub struct Socket {
    fd: OwnedFd,
    seq: Cell<u32>,
}

impl Socket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Socket> {
        // SAFETY: plain syscalls; the descriptor is owned from here on.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: all-zero is a valid sockaddr_nl (port id 0: the kernel picks one).
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `addr` is a sockaddr_nl of `len` bytes.
        if unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_nl).cast(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket { fd, seq: Cell::new(0) })
    }

    /// Sends a request and waits for its ack.
    fn ack(&self, msg: &mut Message) -> io::Result<()> {
        self.exchange(msg, &mut |_| {})
    }

    /// Every object a dump of `kind` returns that `parse` reads; the dump is run again when the
    /// kernel marks it inconsistent (`NLM_F_DUMP_INTR`: something changed while it ran).
    fn dump<T>(&self, kind: u16, header: &[u8], parse: fn(&[u8]) -> Option<T>) -> io::Result<Vec<T>> {
        for _ in 0..DUMP_TRIES {
            let mut items = Vec::new();
            match self.exchange(&mut Message::dump(kind, header), &mut |payload| items.extend(parse(payload))) {
                Ok(()) => return Ok(items),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    /// Sends `msg` and gives `each` the payload of every reply that carries its sequence
    /// number, until the ack (`NLMSG_ERROR`) or the end of a dump (`NLMSG_DONE`). Replies with
    /// another number are left over from an earlier exchange that stopped early, and skipped.
    fn exchange(&self, msg: &mut Message, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let bytes = msg.finish(seq);
        let fd = self.fd.as_raw_fd();
        // SAFETY: `bytes` is valid for its length.
        retry(|| unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), 0) })?;
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut interrupted = false;
        loop {
            // SAFETY: `buf` is valid for its length; MSG_TRUNC makes recv return the whole
            // datagram's length, so a cut one is seen.
            let len = retry(|| unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) })?;
            let mut rest = buf.get(..len).ok_or(io::ErrorKind::InvalidData)?;
            while let Some(reply) = message::next_reply(&mut rest)? {
                if reply.seq != seq {
                    continue;
                }
                interrupted |= reply.flags & NLM_F_DUMP_INTR != 0;
                match reply.kind {
                    // The ack, or the error; a dump's end may carry an error too.
                    NLMSG_ERROR | NLMSG_DONE => {
                        let error = message::u32_at(reply.payload, 0).map_or(0, |e| e as i32);
                        return match error {
                            0 if interrupted => Err(io::Error::from_raw_os_error(libc::EAGAIN)),
                            0 => Ok(()),
                            _ => Err(io::Error::from_raw_os_error(-error)),
                        };
                    }
                    _ => each(reply.payload),
                }
            }
        }
    }
}

/// A socket call's result, made again when a signal interrupted it.
fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let ret = call();
        if ret >= 0 {
            return Ok(ret as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
