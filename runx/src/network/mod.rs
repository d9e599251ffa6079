//! The container's network. The engine (CNI through containerd, CRI, podman) sets it up in a
//! network namespace; runx keeps the container's monitor, the process the engine knows as the
//! container's, in that namespace, moves the guest's vif backend into it and joins the two with
//! tc redirects both ways, so that the guest stands in for the engine's interface
//! (docs/network.md). Everything runx asks of the network goes through `Net`.

mod counters;
mod guest;
#[cfg(test)]
pub mod memory;
mod namespace;
mod netlink;

use std::net::IpAddr;
use std::os::fd::BorrowedFd;

pub use counters::{guest_counters, Counters};
pub use guest::{plan_guest, Facts, MAX_VIF_MTU};
pub use namespace::{NamespaceError, NetworkNamespace};
pub use netlink::Netlink;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network: {what}: {source}")]
    Kernel { what: String, source: std::io::Error },
    #[error("network: {interface} has MTU {mtu}, which a Xen vif cannot carry (68 to {MAX_VIF_MTU}): give the engine's network a smaller MTU")]
    Mtu { interface: String, mtu: u32 },
    #[error("network: the route to {dst}/{prefix} through {interface} has several next hops, which one guest interface cannot carry")]
    Multipath { interface: String, dst: IpAddr, prefix: u8 },
    #[error("network: {interface} has more addresses and routes than fit in a xenstore value (4 KiB)")]
    TooLarge { interface: String },
    #[error("network: {interface} already has an ingress qdisc: it is wired to another guest, or someone else's tc rules are on it")]
    Taken { interface: String },
}

/// What runx asks of the kernel's networking, in a namespace given by descriptor.
pub trait Net {
    /// The namespace's interfaces, addresses and routes.
    fn facts(&self, namespace: BorrowedFd<'_>) -> Result<Facts, NetError>;
    /// Moves `vif` (a guest's backend, created in runx's own namespace by `xl create`) into
    /// `namespace`, where it waits, down, for `wire`.
    fn adopt(&self, vif: &str, namespace: BorrowedFd<'_>) -> Result<(), NetError>;
    /// Gives `vif` the interface's MTU, brings it up, and redirects what arrives on either to
    /// leave through the other.
    fn wire(&self, namespace: BorrowedFd<'_>, vif: &str, interface: &str, mtu: u32) -> Result<(), NetError>;
    /// Removes the interface's side of `wire` (the vif's goes with the vif); nothing to remove
    /// is not an error.
    fn unwire(&self, namespace: BorrowedFd<'_>, interface: &str) -> Result<(), NetError>;
}

/// The name dom0 gives a guest's first vif backend.
pub fn vif_name(domid: u32) -> String {
    format!("vif{domid}.0")
}
