//! The shared page's layout, as libxenvchan lays it out (`struct vchan_interface` in Xen's
//! `xen/include/public/io/libxenvchan.h`): both sides must agree on it byte for byte, so it is
//! written down once here, with the ring sizes' rules.
//!
//! `left` is the ring the client writes and the server reads, `right` the other way. A ring of
//! order 10 or 11 lives inside the shared page (at offset 1024 or 2048); a larger one has pages
//! of its own, whose grant references follow the header (`grants[]`: left's, then right's).

use std::io;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU8, Ordering};

/// Xen's grant granularity: every granted page is 4 KiB, whatever the kernel's page size.
pub(crate) const PAGE_SIZE: usize = 4096;
const PAGE_SHIFT: u8 = 12;

/// The smallest ring: 1 KiB, in the shared page.
pub const MIN_ORDER: u8 = 10;
/// The largest ring libxenvchan accepts: 1 MiB, 256 granted pages.
pub const MAX_ORDER: u8 = 20;
/// The most pages one ring has.
pub(crate) const MAX_RING_PAGES: usize = pages(MAX_ORDER);

/// In a notify byte: "kick me when you have written" (data to read).
pub(crate) const NOTIFY_WRITE: u8 = 1;
/// In a notify byte: "kick me when you have read" (space to write).
pub(crate) const NOTIFY_READ: u8 = 2;

/// `live` before the client has connected (the server's initial `cli_live`).
pub(crate) const LIVE_WAITING: u8 = 2;

/// `struct ring_shared`: one ring's indexes, free-running `u32` byte counts.
#[repr(C)]
pub(crate) struct RingShared {
    pub cons: AtomicU32,
    pub prod: AtomicU32,
}

/// `struct vchan_interface` without its trailing `grants[]`. Every field is an atomic: the peer
/// writes the page while this side reads it.
#[repr(C)]
pub(crate) struct Interface {
    pub left: RingShared,
    pub right: RingShared,
    pub left_order: AtomicU16,
    pub right_order: AtomicU16,
    /// 0: the client has gone, 1: connected, 2: not connected yet.
    pub cli_live: AtomicU8,
    /// 0: the server has gone, 1: there.
    pub srv_live: AtomicU8,
    /// The notifications the server asks of the client (`NOTIFY_*` bits).
    pub cli_notify: AtomicU8,
    /// The notifications the client asks of the server.
    pub srv_notify: AtomicU8,
}

/// Where `grants[]` starts: right after the header.
pub(crate) const GRANTS_OFFSET: usize = 24;
const _: () = assert!(std::mem::size_of::<Interface>() == GRANTS_OFFSET);

/// Byte offsets of the live flags, for the unmap notifications that clear them.
pub(crate) const CLI_LIVE_OFFSET: usize = 20;
pub(crate) const SRV_LIVE_OFFSET: usize = 21;

/// Where a ring of `order` sits in the shared page, if it fits there.
pub(crate) fn in_page_offset(order: u8) -> Option<usize> {
    match order {
        10 => Some(1024),
        11 => Some(2048),
        _ => None,
    }
}

/// The pages a ring of `order` needs besides the shared page.
pub(crate) const fn pages(order: u8) -> usize {
    if order >= PAGE_SHIFT {
        1 << (order - PAGE_SHIFT)
    } else {
        0
    }
}

/// The `grants[i]` slot of the shared page at `page`.
///
/// # Safety
/// `page` is a mapped shared page and `i` passed `Orders::check` (the slot ends before any
/// in-page ring and inside the page).
pub(crate) unsafe fn grant<'a>(page: *mut u8, i: usize) -> &'a AtomicU32 {
    &*page.add(GRANTS_OFFSET + 4 * i).cast::<AtomicU32>()
}

/// The two rings' sizes, log2 of bytes, chosen by the server: `left` carries client to server,
/// `right` server to client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Orders {
    /// The ring the client writes and the server reads.
    pub left: u8,
    /// The ring the server writes and the client reads.
    pub right: u8,
}

impl Orders {
    /// Both rings' sizes as libxenvchan accepts them: each in `MIN_ORDER..=MAX_ORDER`, not both
    /// in the same place of the shared page, and the grant list ending before the first in-page
    /// ring (and inside the page).
    pub fn check(self) -> io::Result<()> {
        let valid = |order| (MIN_ORDER..=MAX_ORDER).contains(&order);
        let clash = self.left == self.right && in_page_offset(self.left).is_some();
        let grants_end = GRANTS_OFFSET + 4 * self.grants();
        let room = [self.left, self.right].iter().filter_map(|&o| in_page_offset(o)).min().unwrap_or(PAGE_SIZE);
        if valid(self.left) && valid(self.right) && !clash && grants_end <= room {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "vchan: ring orders libxenvchan does not accept"))
        }
    }

    /// How many grant references the shared page lists.
    pub(crate) fn grants(self) -> usize {
        pages(self.left) + pages(self.right)
    }

    /// The orders the server wrote in the shared page, checked: they come from the peer.
    pub(crate) fn read(interface: &Interface) -> io::Result<Orders> {
        let order = |o: &AtomicU16| u8::try_from(o.load(Ordering::Acquire)).unwrap_or(u8::MAX);
        let orders = Orders { left: order(&interface.left_order), right: order(&interface.right_order) };
        orders.check().map(|()| orders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;
    use std::ptr::addr_of;

    #[test]
    fn header_fields_sit_where_libxenvchan_puts_them() {
        let header = MaybeUninit::<Interface>::uninit();
        let base = header.as_ptr();
        let offset = |field: *const u8| field as usize - base as usize;
        // SAFETY: only addresses are taken, nothing is read.
        unsafe {
            assert_eq!(offset(addr_of!((*base).left.cons).cast()), 0);
            assert_eq!(offset(addr_of!((*base).left.prod).cast()), 4);
            assert_eq!(offset(addr_of!((*base).right.cons).cast()), 8);
            assert_eq!(offset(addr_of!((*base).right.prod).cast()), 12);
            assert_eq!(offset(addr_of!((*base).left_order).cast()), 16);
            assert_eq!(offset(addr_of!((*base).right_order).cast()), 18);
            assert_eq!(offset(addr_of!((*base).cli_live).cast()), CLI_LIVE_OFFSET);
            assert_eq!(offset(addr_of!((*base).srv_live).cast()), SRV_LIVE_OFFSET);
            assert_eq!(offset(addr_of!((*base).cli_notify).cast()), 22);
            assert_eq!(offset(addr_of!((*base).srv_notify).cast()), 23);
        }
        assert_eq!(std::mem::size_of::<Interface>(), 24);
        assert_eq!(GRANTS_OFFSET, 24);
        assert_eq!((NOTIFY_WRITE, NOTIFY_READ), (0x1, 0x2));
    }

    #[test]
    fn small_rings_sit_in_the_page_and_large_ones_in_pages_of_their_own() {
        assert_eq!(in_page_offset(10), Some(1024));
        assert_eq!(in_page_offset(11), Some(2048));
        assert_eq!(in_page_offset(12), None);
        assert_eq!((pages(10), pages(11), pages(12), pages(16), pages(20)), (0, 0, 1, 16, 256));
    }

    #[test]
    fn orders_are_checked_as_libxenvchan_checks_them() {
        let ok = |left, right| Orders { left, right }.check().is_ok();
        assert!(ok(10, 11) && ok(11, 10) && ok(10, 12) && ok(12, 16) && ok(16, 16) && ok(20, 20));
        assert!(!ok(10, 10) && !ok(11, 11), "two rings in the same place of the page");
        assert!(!ok(9, 11) && !ok(10, 21) && !ok(0, 0), "outside 10..=20");
        // 256 grants (1 KiB of references) run into a ring at offset 1024, not into one at 2048.
        assert!(!ok(10, 20) && ok(11, 20));
        assert_eq!(Orders { left: 12, right: 16 }.grants(), 17);
    }
}
