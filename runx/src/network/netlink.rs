//! `Net` on the kernel, through rtnetlink (`runx-netlink`): a socket opened inside the
//! container's namespace stays there, so runx enters the namespace only to open one.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sched::{setns, CloneFlags};
use runx_netlink::{LinkChange, Socket};

use super::{Facts, Net, NetError};

#[derive(Debug, Default)]
pub struct Netlink;

fn kernel(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Kernel { what, source }
}

/// A socket in `namespace`: the calling thread enters it, opens the socket and comes back.
fn socket_in(namespace: BorrowedFd<'_>) -> Result<Socket, NetError> {
    let own = File::open("/proc/thread-self/ns/net").map_err(kernel("open runx's own network namespace"))?;
    setns(namespace, CloneFlags::CLONE_NEWNET)
        .map_err(|e| kernel("enter the container's network namespace")(e.into()))?;
    let socket = Socket::open();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| kernel("return to runx's own network namespace")(e.into()))?;
    socket.map_err(kernel("open a netlink socket in the container's namespace"))
}

impl Net for Netlink {
    fn facts(&self, namespace: BorrowedFd<'_>) -> Result<Facts, NetError> {
        let socket = socket_in(namespace)?;
        Ok(Facts {
            links: socket.links().map_err(kernel("list the namespace's interfaces"))?,
            addresses: socket.addresses().map_err(kernel("list the namespace's addresses"))?,
            routes: socket.routes().map_err(kernel("list the namespace's routes"))?,
        })
    }

    fn adopt(&self, vif: &str, namespace: BorrowedFd<'_>) -> Result<(), NetError> {
        let socket = Socket::open().map_err(kernel("open a netlink socket"))?;
        let index = socket.link_index(vif).map_err(kernel(format!("find {vif}")))?;
        let change = LinkChange { netns: Some(namespace), ..Default::default() };
        socket.set_link(index, &change).map_err(kernel(format!("move {vif} into the container's namespace")))
    }

    fn wire(&self, namespace: BorrowedFd<'_>, vif: &str, interface: &str, mtu: u32) -> Result<(), NetError> {
        let socket = socket_in(namespace)?;
        let vif_index = socket.link_index(vif).map_err(kernel(format!("find {vif}")))?;
        let index = socket.link_index(interface).map_err(kernel(format!("find {interface}")))?;
        let up = LinkChange { mtu: Some(mtu), up: Some(true), ..Default::default() };
        socket.set_link(vif_index, &up).map_err(kernel(format!("bring {vif} up with MTU {mtu}")))?;
        match socket.add_ingress_qdisc(index) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(NetError::Taken { interface: interface.to_owned() })
            }
            result => result.map_err(kernel(format!("add an ingress qdisc to {interface}")))?,
        }
        socket.add_ingress_qdisc(vif_index).map_err(kernel(format!("add an ingress qdisc to {vif}")))?;
        socket.redirect_ingress(index, vif_index).map_err(kernel(format!("redirect {interface} to {vif}")))?;
        socket.redirect_ingress(vif_index, index).map_err(kernel(format!("redirect {vif} to {interface}")))
    }

    fn unwire(&self, namespace: BorrowedFd<'_>, interface: &str) -> Result<(), NetError> {
        let socket = socket_in(namespace)?;
        let index = match socket.link_index(interface) {
            Ok(index) => index,
            // The engine removed it already (CNI DEL before delete).
            Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => return Ok(()),
            Err(e) => return Err(kernel(format!("find {interface}"))(e)),
        };
        match socket.del_ingress_qdisc(index) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            result => result.map_err(kernel(format!("remove {interface}'s ingress qdisc"))),
        }
    }
}
