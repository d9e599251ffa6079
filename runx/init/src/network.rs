//! The guest's network. Loopback is always up, as in the new namespace runc would give. When the
//! host wrote `keys::NETWORK` before `start`, the vif Xen gave the guest becomes the namespace's
//! interface (its name, MAC, MTU, addresses and routes), wired by the host to the engine's.
//! Without that key, a vif there is taken away: the engine's namespace had no interface, and
//! the process sees what it would see there, loopback alone.

use std::fs;
use std::io;
use std::path::Path;

use runx_launch::keys;
use runx_launch::network::GuestNetwork;
use runx_netlink::{LinkChange, RouteChange, Socket};
use runx_xenstore::Xenstore;

use crate::Failure;

/// The guest's first vif, as the Xen bus shows it.
const VIF: &str = "/sys/bus/xen/devices/vif-0";
/// The name the guest kernel gives the vif: its only network device.
const NETFRONT: &str = "eth0";

fn failed(what: &str, e: io::Error) -> Failure {
    Failure::setup(format!("network: {what}: {e}"))
}

pub fn configure(store: Option<&mut Xenstore>) -> Result<(), Failure> {
    let socket = Socket::open().map_err(|e| failed("netlink", e))?;
    let lo = socket.link_index("lo").map_err(|e| failed("lo", e))?;
    let up = LinkChange { up: Some(true), ..Default::default() };
    socket.set_link(lo, &up).map_err(|e| failed("bring lo up", e))?;
    let text = match store {
        Some(store) => store.read(keys::NETWORK).map_err(|e| failed(keys::NETWORK, e))?,
        None => None,
    };
    let Some(text) = text else {
        return match Path::new(VIF).exists() {
            true => fs::write("/sys/bus/xen/drivers/vif/unbind", "vif-0").map_err(|e| failed("take the vif away", e)),
            false => Ok(()),
        };
    };
    let network = GuestNetwork::parse(&text).map_err(|e| Failure::setup(e.to_string()))?;
    let index = socket.link_index(NETFRONT).map_err(|e| failed(NETFRONT, e))?;
    let change = LinkChange {
        name: (network.name != NETFRONT).then_some(network.name.as_str()),
        mac: Some(network.mac),
        mtu: Some(network.mtu),
        up: Some(true),
        netns: None,
    };
    socket.set_link(index, &change).map_err(|e| failed(&network.name, e))?;
    for address in &network.addresses {
        socket.add_address(index, address.ip, address.prefix).map_err(|e| failed("add an address", e))?;
    }
    for route in &network.routes {
        let change = RouteChange { dst: route.dst.ip, prefix: route.dst.prefix, gateway: route.gateway, oif: index };
        socket.add_route(&change).map_err(|e| failed("add a route", e))?;
    }
    Ok(())
}
