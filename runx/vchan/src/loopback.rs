//! Two endpoints in one process, for the tests: the pages are a memfd that each side maps on
//! its own (as two domains map the same granted pages), the event channel is an eventfd each
//! way, and a third mapping lets a test look at the shared page or change it as a peer (or
//! the kernel's unmap notification) would.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::endpoint::Endpoint;
use crate::layout::{self, Interface, Orders, PAGE_SIZE};
use crate::notify::Notify;
use crate::region::{Memory, Region};

/// A `Notify` over eventfds, counting the kicks it sends.
pub(crate) struct Kick {
    own: Arc<OwnedFd>,
    peer: Arc<OwnedFd>,
    sent: Arc<AtomicUsize>,
}

impl Notify for Kick {
    fn notify(&self) -> io::Result<()> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        let one = 1u64;
        // SAFETY: 8 bytes from a u64.
        if unsafe { libc::write(self.peer.as_raw_fd(), (&one as *const u64).cast(), 8) } != 8 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn take(&self) -> io::Result<bool> {
        let mut count = 0u64;
        // SAFETY: 8 bytes into a u64.
        if unsafe { libc::read(self.own.as_raw_fd(), (&mut count as *mut u64).cast(), 8) } == 8 {
            return Ok(true);
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            Ok(false)
        } else {
            Err(error)
        }
    }

    fn fd(&self) -> RawFd {
        self.own.as_raw_fd()
    }
}

pub(crate) struct Pair {
    pub server: Endpoint<Kick>,
    pub client: Endpoint<Kick>,
    /// Kicks each side has sent.
    pub server_kicks: Arc<AtomicUsize>,
    pub client_kicks: Arc<AtomicUsize>,
    page: Region,
}

impl Pair {
    /// The shared page, as a third party sees it.
    pub(crate) fn shared(&self) -> &Interface {
        // SAFETY: mapped as long as the pair lives.
        unsafe { &*self.page.as_ptr().cast::<Interface>() }
    }
}

/// A server and a client connected through rings of `orders`.
pub(crate) fn pair(orders: Orders) -> Pair {
    pair_at(orders, 0)
}

/// As `pair`, with both rings' indexes starting at `start` (as after `start` bytes each way).
pub(crate) fn pair_at(orders: Orders, start: u32) -> Pair {
    let ring_len = |order| layout::pages(order) * PAGE_SIZE;
    let (left_at, right_at) = (PAGE_SIZE, PAGE_SIZE + ring_len(orders.left));
    let memfd = memfd(right_at + ring_len(orders.right));
    let map = |len, offset: usize| Region::map(memfd.as_fd(), len, libc::PROT_READ | libc::PROT_WRITE, offset as u64);
    let ring = |order, offset| (ring_len(order) > 0).then(|| map(ring_len(order), offset).unwrap());
    let memory = || {
        let page = map(PAGE_SIZE, 0).unwrap();
        Memory::new(page, ring(orders.left, left_at), ring(orders.right, right_at), orders).unwrap()
    };

    let (to_server, to_client) = (eventfd(), eventfd());
    let (server_kicks, client_kicks) = (Arc::default(), Arc::default());
    let kick = |own: &Arc<OwnedFd>, peer: &Arc<OwnedFd>, sent: &Arc<AtomicUsize>| Kick {
        own: own.clone(),
        peer: peer.clone(),
        sent: sent.clone(),
    };

    let grants: Vec<u32> = (1..=orders.grants() as u32).collect();
    let server = Endpoint::offer(memory(), orders, &grants, kick(&to_server, &to_client, &server_kicks)).unwrap();
    let page = map(PAGE_SIZE, 0).unwrap();
    // SAFETY: mapped, and as large as the header.
    let shared = unsafe { &*page.as_ptr().cast::<Interface>() };
    for ring in [&shared.left, &shared.right] {
        ring.cons.store(start, Ordering::SeqCst);
        ring.prod.store(start, Ordering::SeqCst);
    }
    // What the client does: the orders and grants it would map, from the page.
    assert_eq!(Orders::read(shared).unwrap(), orders);
    // SAFETY: below `orders.grants()`, checked orders.
    let listed: Vec<u32> =
        (0..orders.grants()).map(|i| unsafe { layout::grant(page.as_ptr(), i) }.load(Ordering::SeqCst)).collect();
    assert_eq!(listed, grants);
    let client = Endpoint::accept(memory(), orders, kick(&to_client, &to_server, &client_kicks)).unwrap();
    Pair { server, client, server_kicks, client_kicks, page }
}

fn memfd(len: usize) -> OwnedFd {
    let name = CStr::from_bytes_with_nul(b"vchan-test\0").unwrap();
    // SAFETY: a new descriptor, owned from here on.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
    // SAFETY: as above.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain syscall on our descriptor.
    assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) }, 0);
    fd
}

fn eventfd() -> Arc<OwnedFd> {
    // SAFETY: a new descriptor, owned from here on.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
    // SAFETY: as above.
    Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })
}
