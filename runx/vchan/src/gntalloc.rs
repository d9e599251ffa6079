//! `/dev/xen/gntalloc`: the server's (guest's) pages, allocated in this domain and granted to
//! the peer.
//!
//! Each allocation is mapped and then released from the descriptor at once
//! (`IOCTL_GNTALLOC_DEALLOC_GREF`), as libxengntshr does: the pages live on in the mapping and
//! are freed when it goes (and the peer has unmapped them). An unmap notification on the shared
//! page clears this side's live flag and kicks the peer when the mapping goes, however this
//! process ends.

use std::io;
use std::mem::size_of;

use crate::layout::{MAX_RING_PAGES, PAGE_SIZE};
use crate::region::Region;
use crate::sys::{ioc, Device, UnmapNotify, UNMAP_NOTIFY_CLEAR_BYTE, UNMAP_NOTIFY_SEND_EVENT};

const PATH: &str = "/dev/xen/gntalloc";
const MISSING: &str = "the guest kernel needs CONFIG_XEN_GRANT_DEV_ALLOC (module xen-gntalloc)";

/// `struct ioctl_gntalloc_alloc_gref`, with room for `N` grant references (the header declares
/// one; the kernel writes `count`).
#[repr(C)]
struct AllocGref<const N: usize> {
    domid: u16,
    flags: u16,
    count: u32,
    index: u64,
    gref_ids: [u32; N],
}

/// `struct ioctl_gntalloc_dealloc_gref`.
#[repr(C)]
struct DeallocGref {
    index: u64,
    count: u32,
}

const _: () = assert!(size_of::<AllocGref<1>>() == 24);
const _: () = assert!(size_of::<DeallocGref>() == 16);

const IOCTL_GNTALLOC_ALLOC_GREF: u32 = ioc(b'G', 5, size_of::<AllocGref<1>>());
const IOCTL_GNTALLOC_DEALLOC_GREF: u32 = ioc(b'G', 6, size_of::<DeallocGref>());
const IOCTL_GNTALLOC_SET_UNMAP_NOTIFY: u32 = ioc(b'G', 7, size_of::<UnmapNotify>());

const GNTALLOC_FLAG_WRITABLE: u16 = 1;

pub(crate) struct Gntalloc(Device);

impl Gntalloc {
    pub(crate) fn open() -> io::Result<Gntalloc> {
        Device::open(PATH, 0, MISSING).map(Gntalloc)
    }

    /// Allocates `refs.len()` zeroed pages, grants them writable to `domid`, maps them, and
    /// puts their grant references in `refs`. With `notify` (a byte's offset in the pages, a
    /// port), unmapping them clears that byte and kicks the port.
    pub(crate) fn share(&self, domid: u16, refs: &mut [u32], notify: Option<(usize, u32)>) -> io::Result<Region> {
        let count = refs.len();
        if count == 0 || count > MAX_RING_PAGES {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let mut alloc = AllocGref::<MAX_RING_PAGES> {
            domid,
            flags: GNTALLOC_FLAG_WRITABLE,
            count: count as u32,
            index: 0,
            gref_ids: [0; MAX_RING_PAGES],
        };
        // SAFETY: the argument IOCTL_GNTALLOC_ALLOC_GREF takes, with room for `count` references.
        unsafe { self.0.ioctl("IOCTL_GNTALLOC_ALLOC_GREF", IOCTL_GNTALLOC_ALLOC_GREF, &mut alloc) }?;
        let mapped = self.0.map(count * PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE, alloc.index).and_then(|pages| {
            if let Some((offset, port)) = notify {
                let mut notify = UnmapNotify {
                    index: alloc.index + offset as u64,
                    action: UNMAP_NOTIFY_CLEAR_BYTE | UNMAP_NOTIFY_SEND_EVENT,
                    event_channel_port: port,
                };
                // SAFETY: the argument IOCTL_GNTALLOC_SET_UNMAP_NOTIFY takes.
                unsafe {
                    self.0.ioctl("IOCTL_GNTALLOC_SET_UNMAP_NOTIFY", IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, &mut notify)
                }?;
            }
            Ok(pages)
        });
        let mut dealloc = DeallocGref { index: alloc.index, count: count as u32 };
        // SAFETY: the argument IOCTL_GNTALLOC_DEALLOC_GREF takes.
        let released =
            unsafe { self.0.ioctl("IOCTL_GNTALLOC_DEALLOC_GREF", IOCTL_GNTALLOC_DEALLOC_GREF, &mut dealloc) };
        let pages = mapped?;
        released?;
        refs.copy_from_slice(&alloc.gref_ids[..count]);
        Ok(pages)
    }
}
