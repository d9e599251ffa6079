//! The server's side, in the guest: grants the pages and allocates the port, and says what the
//! client needs to connect (`Offer`), which the caller publishes (in xenstore, say).

use std::io;

use crate::evtchn::EventChannel;
use crate::gntalloc::Gntalloc;
use crate::layout::{self, Orders, SRV_LIVE_OFFSET};
use crate::region::{Memory, Region};
use crate::Vchan;

/// What the client needs to connect: the shared page's grant reference and the server's event
/// channel port (libxenvchan publishes them as `ring-ref` and `event-channel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    pub ring_ref: u32,
    pub port: u32,
}

impl Vchan {
    /// Offers a vchan to domain `peer`, with rings of the sizes `orders` says. The server can
    /// write before the client connects, up to the ring's size.
    pub fn serve(peer: u16, orders: Orders) -> io::Result<(Vchan, Offer)> {
        orders.check()?;
        let channel = EventChannel::bind_unbound(peer)?;
        let gntalloc = Gntalloc::open()?;
        let mut ring_ref = [0];
        let page = gntalloc.share(peer, &mut ring_ref, Some((SRV_LIVE_OFFSET, channel.port())))?;
        let mut grants = vec![0; orders.grants()];
        let (left_grants, right_grants) = grants.split_at_mut(layout::pages(orders.left));
        let left = share_ring(&gntalloc, peer, left_grants)?;
        let right = share_ring(&gntalloc, peer, right_grants)?;
        let offer = Offer { ring_ref: ring_ref[0], port: channel.port() };
        let memory = Memory::new(page, left, right, orders)?;
        Ok((Vchan::offer(memory, orders, &grants, channel)?, offer))
    }
}

/// A ring's own pages, if it has any.
fn share_ring(gntalloc: &Gntalloc, peer: u16, refs: &mut [u32]) -> io::Result<Option<Region>> {
    if refs.is_empty() {
        return Ok(None);
    }
    gntalloc.share(peer, refs, None).map(Some)
}
