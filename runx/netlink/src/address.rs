//! IPv4 and IPv6 addresses on links (`ifaddrmsg`, include/uapi/linux/if_addr.h).

use std::io;
use std::net::IpAddr;

use crate::message::{self, Message, AF_INET6, NLM_F_CREATE, NLM_F_EXCL};
use crate::Socket;

const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const IFADDRMSG_LEN: usize = 8;

/// An address, as a dump lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// `RT_SCOPE_*`: 0 universe, 253 link (fe80::/10), 254 host (127.0.0.1).
    pub scope: u8,
}

fn ifaddrmsg(family: u8, prefix: u8, flags: u8, index: u32) -> [u8; IFADDRMSG_LEN] {
    let [a, b, c, d] = index.to_ne_bytes();
    // The scope stays 0 (universe); the kernel narrows it for loopback addresses itself.
    [family, prefix, flags, 0, a, b, c, d]
}

fn add_address_message(index: u32, addr: IpAddr, prefix: u8) -> Message {
    let family = message::family(addr);
    // No duplicate address detection for v6: the address is usable at once, not "tentative"
    // for a second while the guest's process has already started.
    let flags = if family == AF_INET6 { IFA_F_NODAD } else { 0 };
    let header = ifaddrmsg(family, prefix, flags, index);
    let mut msg = Message::request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &header);
    // As iproute2 sends an address without a peer: the local address is also the address.
    msg.attr_ip(IFA_LOCAL, addr);
    msg.attr_ip(IFA_ADDRESS, addr);
    msg
}

fn parse_address(payload: &[u8]) -> Option<Address> {
    let (family, prefix, scope) = (*payload.first()?, *payload.get(1)?, *payload.get(3)?);
    let (mut local, mut address) = (None, None);
    for (kind, value) in message::attrs(payload, IFADDRMSG_LEN) {
        match kind {
            IFA_LOCAL => local = message::ip(family, value),
            IFA_ADDRESS => address = message::ip(family, value),
            _ => {}
        }
    }
    // IFA_ADDRESS is the peer's address on a point-to-point link; IFA_LOCAL, when there, is ours.
    let addr = local.or(address)?;
    Some(Address { index: message::u32_at(payload, 4)?, addr, prefix, scope })
}

impl Socket {
    /// Adds `addr/prefix` to a link; EEXIST when it is there already.
    pub fn add_address(&self, index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        self.ack(&mut add_address_message(index, addr, prefix))
    }

    /// Every IPv4 and IPv6 address in the socket's namespace.
    pub fn addresses(&self) -> io::Result<Vec<Address>> {
        self.dump(RTM_GETADDR, &ifaddrmsg(0, 0, 0, 0), parse_address)
    }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn a_v6_address_is_added_without_duplicate_address_detection() {
        let addr: IpAddr = "fd88::7".parse().unwrap();
        #[rustfmt::skip]
        let expected = [
            64, 0, 0, 0, 20, 0, 0x05, 0x06, 3, 0, 0, 0, 0, 0, 0, 0, // RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE, seq 3
            10, 64, 2, 0, 5, 0, 0, 0,                              // AF_INET6, /64, IFA_F_NODAD, index 5
            20, 0, 2, 0, 0xfd, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, // IFA_LOCAL
            20, 0, 1, 0, 0xfd, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, // IFA_ADDRESS
        ];
        assert_eq!(add_address_message(5, addr, 64).finish(3), expected);
    }

    #[test]
    fn a_v4_address_has_no_flags() {
        let addr: IpAddr = "10.88.0.7".parse().unwrap();
        #[rustfmt::skip]
        let expected = [
            40, 0, 0, 0, 20, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0,
            2, 16, 0, 0, 5, 0, 0, 0,
            8, 0, 2, 0, 10, 88, 0, 7,
            8, 0, 1, 0, 10, 88, 0, 7,
        ];
        assert_eq!(add_address_message(5, addr, 16).finish(1), expected);
    }

    #[test]
    fn the_local_address_wins_over_the_peer() {
        let mut payload = ifaddrmsg(2, 32, 0, 4).to_vec();
        payload[3] = 254;
        payload.extend_from_slice(&[8, 0, 1, 0, 10, 0, 0, 2]);
        payload.extend_from_slice(&[8, 0, 2, 0, 10, 0, 0, 1]);
        let expected = Address { index: 4, addr: "10.0.0.1".parse().unwrap(), prefix: 32, scope: 254 };
        assert_eq!(parse_address(&payload), Some(expected));
    }
}
