//! Links (network interfaces): look one up, change it, list them (`ifinfomsg`,
//! include/uapi/linux/rtnetlink.h and if_link.h).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::message::{self, Message};
use crate::Socket;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_NET_NS_FD: u16 = 28;
const IFF_UP: u32 = libc::IFF_UP as u32;
const IFF_LOOPBACK: u32 = libc::IFF_LOOPBACK as u32;
const IFINFOMSG_LEN: usize = 16;

/// What `set_link` changes; a field left at None stays as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkChange<'a> {
    pub name: Option<&'a str>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: Option<bool>,
    /// Moves the link into the network namespace this descriptor refers to. The kernel moves it
    /// first and applies the rest there; the link goes down and loses its addresses and qdiscs.
    pub netns: Option<BorrowedFd<'a>>,
}

/// A link, as a dump lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// None for links without an Ethernet address (a tunnel, say).
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub up: bool,
    pub is_loopback: bool,
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut header = [0; IFINFOMSG_LEN];
    // Family and type stay 0 (AF_UNSPEC, any).
    header[4..8].copy_from_slice(&index.to_ne_bytes());
    header[8..12].copy_from_slice(&flags.to_ne_bytes());
    header[12..16].copy_from_slice(&change.to_ne_bytes());
    header
}

fn set_link_message(index: u32, change: &LinkChange) -> Message {
    let flags = if change.up == Some(true) { IFF_UP } else { 0 };
    let mask = if change.up.is_some() { IFF_UP } else { 0 };
    let mut msg = Message::request(RTM_NEWLINK, 0, &ifinfomsg(index, flags, mask));
    if let Some(name) = change.name {
        msg.attr_str(IFLA_IFNAME, name);
    }
    if let Some(mac) = change.mac {
        msg.attr(IFLA_ADDRESS, &mac);
    }
    if let Some(mtu) = change.mtu {
        msg.attr_u32(IFLA_MTU, mtu);
    }
    if let Some(netns) = change.netns {
        msg.attr_u32(IFLA_NET_NS_FD, netns.as_raw_fd() as u32);
    }
    msg
}

fn parse_link(payload: &[u8]) -> Option<Link> {
    let flags = message::u32_at(payload, 8)?;
    let mut link = Link {
        index: message::u32_at(payload, 4)?,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: flags & IFF_UP != 0,
        is_loopback: flags & IFF_LOOPBACK != 0,
    };
    for (kind, value) in message::attrs(payload, IFINFOMSG_LEN) {
        match kind {
            IFLA_IFNAME => {
                let name = value.split(|&b| b == 0).next().unwrap_or_default();
                link.name = String::from_utf8_lossy(name).into_owned();
            }
            IFLA_ADDRESS => link.mac = value.try_into().ok(),
            IFLA_MTU => link.mtu = message::u32_at(value, 0)?,
            _ => {}
        }
    }
    Some(link)
}

impl Socket {
    /// The index of the link named `name` in the socket's namespace (not the calling thread's,
    /// which `if_nametoindex` would use); ENODEV when there is none.
    pub fn link_index(&self, name: &str) -> io::Result<u32> {
        let mut msg = Message::request(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0));
        msg.attr_str(IFLA_IFNAME, name);
        let mut index = None;
        self.exchange(&mut msg, &mut |payload| index = message::u32_at(payload, 4))?;
        index.ok_or_else(|| io::ErrorKind::InvalidData.into())
    }

    /// Changes a link in one RTM_NEWLINK. The kernel applies the namespace move, then the MAC,
    /// the MTU, the name and last the up/down flag, so a link can be renamed and brought up at once.
    pub fn set_link(&self, index: u32, change: &LinkChange) -> io::Result<()> {
        self.ack(&mut set_link_message(index, change))
    }

    /// Every link in the socket's namespace.
    pub fn links(&self) -> io::Result<Vec<Link>> {
        self.dump(RTM_GETLINK, &ifinfomsg(0, 0, 0), parse_link)
    }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn set_link_encodes_name_mac_mtu_and_up_in_one_message() {
        let change = LinkChange {
            name: Some("eth0"),
            mac: Some([0x0a, 0x58, 0x0a, 0x58, 0x00, 0x07]),
            mtu: Some(1400),
            up: Some(true),
            netns: None,
        };
        #[rustfmt::skip]
        let expected = [
            64, 0, 0, 0, 16, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: RTM_NEWLINK, REQUEST|ACK, seq 1
            0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,   // ifinfomsg: index 7, IFF_UP in flags and change
            9, 0, 3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0,   // IFLA_IFNAME "eth0\0", padded
            10, 0, 1, 0, 0x0a, 0x58, 0x0a, 0x58, 0, 7, 0, 0,  // IFLA_ADDRESS, padded
            8, 0, 4, 0, 0x78, 0x05, 0, 0,                     // IFLA_MTU 1400
        ];
        assert_eq!(set_link_message(7, &change).finish(1), expected);
    }

    #[test]
    fn set_link_down_clears_only_the_up_flag_and_a_move_sends_the_descriptor() {
        let stdin = std::io::stdin();
        let change = LinkChange { up: Some(false), netns: Some(stdin.as_fd()), ..LinkChange::default() };
        let bytes = set_link_message(3, &change).finish(2).to_vec();
        assert_eq!(&bytes[24..32], [0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&bytes[32..], [8, 0, 28, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_link_is_read_from_a_dump_reply() {
        let mut payload = ifinfomsg(2, IFF_UP | IFF_LOOPBACK, 0).to_vec();
        payload.extend_from_slice(&[7, 0, 3, 0, b'l', b'o', 0, 0]);
        payload.extend_from_slice(&[4, 0, 1, 0]); // an empty address: no MAC
        payload.extend_from_slice(&[8, 0, 4, 0, 0, 0, 1, 0]);
        let link = parse_link(&payload).unwrap();
        let expected = Link { index: 2, name: "lo".into(), mac: None, mtu: 65536, up: true, is_loopback: true };
        assert_eq!(link, expected);
    }
}
