//! What the guest's interface gets: the network the engine set up in the container's namespace,
//! read back from it (`Facts`) and reduced to what one guest interface carries.

use std::net::IpAddr;

use runx_launch::network::{Cidr, GuestNetwork, Route, MAX_BYTES};
use runx_netlink::{Address, Link, Route as KernelRoute};

use super::NetError;

/// The largest MTU a vif takes: `ETH_MAX_MTU` less a VLAN header (Linux's xen-netback).
pub const MAX_VIF_MTU: u32 = 65517;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
/// Routes the kernel makes for an address: the guest's kernel makes its own.
const RTPROT_KERNEL: u8 = 2;

/// A namespace's interfaces, addresses and routes.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<KernelRoute>,
}

fn is_default(route: &KernelRoute) -> bool {
    route.prefix == 0 && route.table == RT_TABLE_MAIN
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

/// The interface the guest stands in for, as the namespace has it, or None when the engine set
/// up no interface there (the guest then has loopback only): the interface that carries the
/// default route, or else the first one with an address. One guest has one interface.
pub fn plan_guest(facts: &Facts) -> Result<Option<GuestNetwork>, NetError> {
    let candidates: Vec<&Link> = facts.links.iter().filter(|l| !l.is_loopback && l.mac.is_some()).collect();
    let has_address =
        |link: &Link| facts.addresses.iter().any(|a| a.index == link.index && !is_link_local(&a.addr) && a.scope == 0);
    let by_default_route = facts
        .routes
        .iter()
        .filter(|r| is_default(r))
        .find_map(|r| candidates.iter().copied().find(|l| Some(l.index) == r.oif));
    let Some(link) = by_default_route.or_else(|| candidates.iter().copied().find(|l| has_address(l))) else {
        return Ok(None);
    };
    if !(68..=MAX_VIF_MTU).contains(&link.mtu) {
        return Err(NetError::Mtu { interface: link.name.clone(), mtu: link.mtu });
    }
    let addresses = facts
        .addresses
        .iter()
        .filter(|a| a.index == link.index && !is_link_local(&a.addr))
        .map(|a| Cidr { ip: a.addr, prefix: a.prefix })
        .collect();
    let mut routes = Vec::new();
    for route in facts.routes.iter().filter(|r| r.table == RT_TABLE_MAIN && r.kind == RTN_UNICAST) {
        if route.multipath {
            return Err(NetError::Multipath { interface: link.name.clone(), dst: route.dst, prefix: route.prefix });
        }
        let ours = route.oif == Some(link.index);
        if !ours || route.protocol == RTPROT_KERNEL || is_link_local(&route.dst) {
            continue;
        }
        routes.push(Route { dst: Cidr { ip: route.dst, prefix: route.prefix }, gateway: route.gateway });
    }
    // A gateway must be reachable when its route is added: routes on the link first.
    routes.sort_by_key(|r| r.gateway.is_some());
    let mac = link.mac.expect("candidates have a MAC");
    let network = GuestNetwork { name: link.name.clone(), mac, mtu: link.mtu, addresses, routes };
    if network.to_text().len() > MAX_BYTES {
        return Err(NetError::TooLarge { interface: link.name.clone() });
    }
    Ok(Some(network))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, mac: Option<[u8; 6]>) -> Link {
        Link { index, name: name.into(), mac, mtu: 1500, up: true, is_loopback: mac.is_none() }
    }

    fn address(index: u32, addr: &str, prefix: u8, scope: u8) -> Address {
        Address { index, addr: addr.parse().unwrap(), prefix, scope }
    }

    fn route(dst: &str, prefix: u8, gateway: Option<&str>, oif: u32, protocol: u8) -> KernelRoute {
        KernelRoute {
            dst: dst.parse().unwrap(),
            prefix,
            gateway: gateway.map(|g| g.parse().unwrap()),
            oif: Some(oif),
            protocol,
            scope: if gateway.is_some() { 0 } else { 253 },
            kind: RTN_UNICAST,
            table: RT_TABLE_MAIN,
            multipath: false,
        }
    }

    /// What the CNI bridge plugin with host-local IPAM leaves in a namespace.
    fn cni() -> Facts {
        Facts {
            links: vec![link(1, "lo", None), link(3, "eth0", Some([0x0a, 0x58, 0x0a, 0x58, 0, 7]))],
            addresses: vec![
                address(1, "127.0.0.1", 8, 254),
                address(3, "10.88.0.7", 16, 0),
                address(3, "fd88::7", 64, 0),
                address(3, "fe80::858:aff:fe58:7", 64, 253),
            ],
            routes: vec![
                route("0.0.0.0", 0, Some("10.88.0.1"), 3, 3),
                route("10.88.0.0", 16, None, 3, RTPROT_KERNEL),
                route("fd88::", 64, None, 3, RTPROT_KERNEL),
                route("fe80::", 64, None, 3, RTPROT_KERNEL),
                route("::", 0, Some("fd88::1"), 3, 3),
                route("192.168.7.0", 24, None, 3, 3),
            ],
        }
    }

    #[test]
    fn the_guest_gets_the_engine_s_interface() {
        let network = plan_guest(&cni()).unwrap().unwrap();
        assert_eq!((network.name.as_str(), network.mac, network.mtu), ("eth0", [0x0a, 0x58, 0x0a, 0x58, 0, 7], 1500));
        let addresses: Vec<String> = network.addresses.iter().map(|a| format!("{}/{}", a.ip, a.prefix)).collect();
        assert_eq!(addresses, ["10.88.0.7/16", "fd88::7/64"], "no link-local address: the guest makes its own");
        let routes: Vec<String> =
            network.routes.iter().map(|r| format!("{}/{} via {:?}", r.dst.ip, r.dst.prefix, r.gateway)).collect();
        assert_eq!(
            routes,
            ["192.168.7.0/24 via None", "0.0.0.0/0 via Some(10.88.0.1)", "::/0 via Some(fd88::1)"],
            "the kernel's own routes left out, on-link routes first"
        );
    }

    #[test]
    fn an_empty_namespace_gives_loopback_only() {
        let facts = Facts { links: vec![link(1, "lo", None)], ..Facts::default() };
        assert_eq!(plan_guest(&facts).unwrap(), None);
    }

    #[test]
    fn the_default_route_picks_the_interface() {
        let mut facts = cni();
        facts.links.insert(1, link(2, "net1", Some([2, 0, 0, 0, 0, 1])));
        facts.addresses.push(address(2, "172.16.0.2", 24, 0));
        assert_eq!(plan_guest(&facts).unwrap().unwrap().name, "eth0");
    }

    #[test]
    fn refuses_what_a_vif_cannot_carry() {
        let mut facts = cni();
        facts.links[1].mtu = 65535;
        let err = plan_guest(&facts).unwrap_err().to_string();
        assert!(err.contains("eth0 has MTU 65535") && err.contains("65517"), "{err}");
        let mut facts = cni();
        facts.routes[0].multipath = true;
        let err = plan_guest(&facts).unwrap_err().to_string();
        assert!(err.contains("several next hops"), "{err}");
    }
}
