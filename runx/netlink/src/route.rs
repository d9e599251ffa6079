//! IPv4 and IPv6 routes (`rtmsg`, include/uapi/linux/rtnetlink.h).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::message::{self, Message, AF_INET, AF_INET6, NLM_F_CREATE, NLM_F_EXCL};
use crate::Socket;

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u8 = 254;
/// What `ip route add` marks its routes with: set up by the administrator, at boot.
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const RTMSG_LEN: usize = 12;

/// A route `add_route` adds to the main table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteChange {
    /// The destination network; `0.0.0.0` or `::` with prefix 0 for a default route.
    pub dst: IpAddr,
    pub prefix: u8,
    /// None for a route on the link (scope link). Add those first: the kernel refuses a gateway
    /// it has no route to (ENETUNREACH).
    pub gateway: Option<IpAddr>,
    pub oif: u32,
}

/// A route, as a dump lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// None for a multipath route (its next hops carry their own) or a blackhole.
    pub oif: Option<u32>,
    /// `RTPROT_*`: 2 the kernel (from an address), 3 boot (`ip route add`), 4 static.
    pub protocol: u8,
    pub scope: u8,
    /// `RTN_*`: 1 unicast, 2 local, 6 blackhole, 7 unreachable...
    pub kind: u8,
    /// `RT_TABLE_*`: 254 main, 255 local.
    pub table: u32,
    /// Has more than one next hop (`RTA_MULTIPATH`), which `gateway` and `oif` do not describe.
    pub multipath: bool,
}

fn rtmsg(family: u8, dst_len: u8, scope: u8) -> [u8; RTMSG_LEN] {
    // No source length, tos or flags.
    [family, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0, 0, 0, 0]
}

fn add_route_message(route: &RouteChange) -> Message {
    let scope = if route.gateway.is_some() { RT_SCOPE_UNIVERSE } else { RT_SCOPE_LINK };
    let header = rtmsg(message::family(route.dst), route.prefix, scope);
    let mut msg = Message::request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &header);
    if route.prefix > 0 {
        msg.attr_ip(RTA_DST, route.dst);
    }
    if let Some(gateway) = route.gateway {
        msg.attr_ip(RTA_GATEWAY, gateway);
    }
    msg.attr_u32(RTA_OIF, route.oif);
    msg
}

fn parse_route(payload: &[u8]) -> Option<Route> {
    let header = payload.get(..RTMSG_LEN)?;
    let family = header[0];
    let mut route = Route {
        dst: match family {
            AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => return None,
        },
        prefix: header[1],
        gateway: None,
        oif: None,
        protocol: header[5],
        scope: header[6],
        kind: header[7],
        // RTA_TABLE, when there, also holds ids above 255.
        table: u32::from(header[4]),
        multipath: false,
    };
    for (kind, value) in message::attrs(payload, RTMSG_LEN) {
        match kind {
            RTA_DST => route.dst = message::ip(family, value)?,
            RTA_GATEWAY => route.gateway = message::ip(family, value),
            RTA_OIF => route.oif = message::u32_at(value, 0),
            RTA_TABLE => route.table = message::u32_at(value, 0)?,
            RTA_MULTIPATH => route.multipath = true,
            _ => {}
        }
    }
    Some(route)
}

impl Socket {
    /// Adds a unicast route to the main table; EEXIST when there is one to `dst/prefix`.
    pub fn add_route(&self, route: &RouteChange) -> io::Result<()> {
        self.ack(&mut add_route_message(route))
    }

    /// Every IPv4 and IPv6 route in the socket's namespace, of every table (the caller keeps
    /// `RT_TABLE_MAIN`'s: the local table has one per local address).
    pub fn routes(&self) -> io::Result<Vec<Route>> {
        self.dump(RTM_GETROUTE, &[0; RTMSG_LEN], parse_route)
    }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn a_default_route_has_a_gateway_and_no_destination() {
        let route = RouteChange {
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
            gateway: Some("10.88.0.1".parse().unwrap()),
            oif: 2,
        };
        #[rustfmt::skip]
        let expected = [
            44, 0, 0, 0, 24, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0, // RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE
            2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0,                  // AF_INET /0, main, boot, universe, unicast
            8, 0, 5, 0, 10, 88, 0, 1,                              // RTA_GATEWAY
            8, 0, 4, 0, 2, 0, 0, 0,                                // RTA_OIF
        ];
        assert_eq!(add_route_message(&route).finish(1), expected);
    }

    #[test]
    fn a_route_without_gateway_is_on_the_link() {
        let route = RouteChange { dst: "fd88::".parse().unwrap(), prefix: 64, gateway: None, oif: 3 };
        let bytes = add_route_message(&route).finish(1).to_vec();
        assert_eq!(&bytes[16..28], [10, 64, 0, 0, 254, 3, 253, 1, 0, 0, 0, 0]);
        assert_eq!(&bytes[28..32], [20, 0, 1, 0]);
        assert_eq!(&bytes[48..], [8, 0, 4, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn a_route_is_read_from_a_dump_reply() {
        let mut payload = vec![10, 0, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0];
        payload.extend_from_slice(&[8, 0, 15, 0, 0, 1, 0, 0]); // RTA_TABLE 256
        payload.extend_from_slice(&[8, 0, 9, 0, 0, 0, 0, 0]);
        let route = parse_route(&payload).unwrap();
        assert_eq!((route.dst, route.prefix), (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0));
        assert_eq!((route.table, route.protocol, route.multipath, route.oif), (256, 4, true, None));
        assert_eq!(parse_route(&[7, 0, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0]), None);
    }
}
