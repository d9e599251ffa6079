//! The client's side, in dom0: binds to the server's port and maps its pages, reading the rings'
//! sizes and grants from the shared page (checked: they come from the guest).

use std::io;
use std::sync::atomic::Ordering;

use crate::evtchn::EventChannel;
use crate::gntdev::Gntdev;
use crate::layout::{self, Interface, Orders, CLI_LIVE_OFFSET};
use crate::region::{Memory, Region};
use crate::server::Offer;
use crate::Vchan;

impl Vchan {
    /// Connects to the vchan domain `peer` offered.
    pub fn connect(peer: u16, offer: Offer) -> io::Result<Vchan> {
        let channel = EventChannel::bind_interdomain(peer, offer.port)?;
        let gntdev = Gntdev::open()?;
        let page = gntdev.map(peer, &[offer.ring_ref], true, Some((CLI_LIVE_OFFSET, channel.port())))?;
        // SAFETY: the page is mapped, and at least as large as the header.
        let orders = Orders::read(unsafe { &*page.as_ptr().cast::<Interface>() })?;
        // SAFETY: `i` is below `orders.grants()`, and `Orders::read` checked the orders.
        let grants: Vec<u32> =
            (0..orders.grants()).map(|i| unsafe { layout::grant(page.as_ptr(), i) }.load(Ordering::Relaxed)).collect();
        let (left_grants, right_grants) = grants.split_at(layout::pages(orders.left));
        // The client writes the left ring and only reads the right one.
        let left = map_ring(&gntdev, peer, left_grants, true)?;
        let right = map_ring(&gntdev, peer, right_grants, false)?;
        let memory = Memory::new(page, left, right, orders)?;
        Vchan::accept(memory, orders, channel)
    }
}

/// A ring's own pages, if it has any.
fn map_ring(gntdev: &Gntdev, peer: u16, refs: &[u32], writable: bool) -> io::Result<Option<Region>> {
    if refs.is_empty() {
        return Ok(None);
    }
    gntdev.map(peer, refs, writable, None).map(Some)
}
