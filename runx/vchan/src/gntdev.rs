//! `/dev/xen/gntdev`: the client's (dom0's) view of the server's pages, mapped by grant
//! reference.
//!
//! The descriptor is closed once the pages are mapped (or failed to): the kernel unmaps the
//! grants when the last mapping goes, and the unmap notification on the shared page then clears
//! this side's live flag and kicks the peer, however this process ends.

use std::io;
use std::mem::size_of;

use crate::layout::{MAX_RING_PAGES, PAGE_SIZE};
use crate::region::Region;
use crate::sys::{ioc, Device, UnmapNotify, UNMAP_NOTIFY_CLEAR_BYTE, UNMAP_NOTIFY_SEND_EVENT};

const PATH: &str = "/dev/xen/gntdev";
const MISSING: &str = "dom0's kernel needs CONFIG_XEN_GNTDEV (module xen-gntdev)";

/// `struct ioctl_gntdev_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy)]
struct GrantRef {
    domid: u32,
    gref: u32,
}

/// `struct ioctl_gntdev_map_grant_ref`, with room for `N` references (the header declares one;
/// the kernel reads `count`).
#[repr(C)]
struct MapGrantRef<const N: usize> {
    count: u32,
    pad: u32,
    index: u64,
    refs: [GrantRef; N],
}

const _: () = assert!(size_of::<GrantRef>() == 8);
const _: () = assert!(size_of::<MapGrantRef<1>>() == 24);

const IOCTL_GNTDEV_MAP_GRANT_REF: u32 = ioc(b'G', 0, size_of::<MapGrantRef<1>>());
const IOCTL_GNTDEV_SET_UNMAP_NOTIFY: u32 = ioc(b'G', 7, size_of::<UnmapNotify>());

pub(crate) struct Gntdev(Device);

impl Gntdev {
    pub(crate) fn open() -> io::Result<Gntdev> {
        Device::open(PATH, 0, MISSING).map(Gntdev)
    }

    /// Maps the pages `domid` granted as `refs`, contiguously, writable or read-only. With
    /// `notify` (a byte's offset in the pages, a port), unmapping them clears that byte and
    /// kicks the port.
    pub(crate) fn map(
        &self,
        domid: u16,
        refs: &[u32],
        writable: bool,
        notify: Option<(usize, u32)>,
    ) -> io::Result<Region> {
        let count = refs.len();
        if count == 0 || count > MAX_RING_PAGES {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let mut map = MapGrantRef::<MAX_RING_PAGES> {
            count: count as u32,
            pad: 0,
            index: 0,
            refs: [GrantRef { domid: 0, gref: 0 }; MAX_RING_PAGES],
        };
        for (slot, &gref) in map.refs.iter_mut().zip(refs) {
            *slot = GrantRef { domid: domid.into(), gref };
        }
        // SAFETY: the argument IOCTL_GNTDEV_MAP_GRANT_REF takes, with `count` references.
        unsafe { self.0.ioctl("IOCTL_GNTDEV_MAP_GRANT_REF", IOCTL_GNTDEV_MAP_GRANT_REF, &mut map) }?;
        let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
        self.0.map(count * PAGE_SIZE, prot, map.index).and_then(|pages| {
            if let Some((offset, port)) = notify {
                let mut notify = UnmapNotify {
                    index: map.index + offset as u64,
                    action: UNMAP_NOTIFY_CLEAR_BYTE | UNMAP_NOTIFY_SEND_EVENT,
                    event_channel_port: port,
                };
                // SAFETY: the argument IOCTL_GNTDEV_SET_UNMAP_NOTIFY takes.
                unsafe { self.0.ioctl("IOCTL_GNTDEV_SET_UNMAP_NOTIFY", IOCTL_GNTDEV_SET_UNMAP_NOTIFY, &mut notify) }?;
            }
            Ok(pages)
        })
    }
}
