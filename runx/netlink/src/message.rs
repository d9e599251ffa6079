//! The one writer and the one reader of netlink messages: an `nlmsghdr`, the request's fixed
//! header (`ifinfomsg`, `ifaddrmsg`, `rtmsg` or `tcmsg`, built by its module) and `rtattr`s,
//! each padded to 4 bytes, in the host's byte order (include/uapi/linux/netlink.h).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// The kernel sets these on some nested attributes; they are not part of the type.
const NLA_TYPE_MASK: u16 = 0x3fff;

pub(crate) const AF_INET: u8 = libc::AF_INET as u8;
pub(crate) const AF_INET6: u8 = libc::AF_INET6 as u8;

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// A request being built. The length and sequence number are filled in by `finish`.
pub(crate) struct Message {
    buf: Vec<u8>,
}

impl Message {
    /// A request the kernel answers with an ack: an `NLMSG_ERROR` whose error is 0 on success.
    pub(crate) fn request(kind: u16, flags: u16, header: &[u8]) -> Message {
        Message::new(kind, NLM_F_REQUEST | NLM_F_ACK | flags, header)
    }

    /// A dump: every object of a kind, in replies that end with `NLMSG_DONE` (no ack).
    pub(crate) fn dump(kind: u16, header: &[u8]) -> Message {
        Message::new(kind, NLM_F_REQUEST | NLM_F_DUMP, header)
    }

    fn new(kind: u16, flags: u16, header: &[u8]) -> Message {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        // The sequence number, then the port id: 0 lets the kernel fill in ours.
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(header);
        let mut msg = Message { buf };
        msg.pad();
        msg
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// Starts an attribute whose value is appended next (bytes or nested attributes).
    pub(crate) fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 2]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        at
    }

    /// Ends the attribute `begin` started: its length leaves out the padding after it.
    pub(crate) fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self.pad();
    }

    pub(crate) fn attr(&mut self, kind: u16, value: &[u8]) {
        let at = self.begin(kind);
        self.buf.extend_from_slice(value);
        self.end(at);
    }

    pub(crate) fn attr_u32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_ne_bytes());
    }

    /// A NUL-terminated string, as the kernel's `NLA_STRING` attributes are sent by iproute2.
    pub(crate) fn attr_str(&mut self, kind: u16, value: &str) {
        let at = self.begin(kind);
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.end(at);
    }

    pub(crate) fn attr_ip(&mut self, kind: u16, addr: IpAddr) {
        match addr {
            IpAddr::V4(v4) => self.attr(kind, &v4.octets()),
            IpAddr::V6(v6) => self.attr(kind, &v6.octets()),
        }
    }

    /// The bytes to send, numbered `seq`.
    pub(crate) fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

pub(crate) fn family(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// One message of a reply.
pub(crate) struct Reply<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// What follows the `nlmsghdr`: the fixed header, then the attributes.
    pub payload: &'a [u8],
}

/// Takes the next message off `buf`; None once it is empty.
pub(crate) fn next_reply<'a>(buf: &mut &'a [u8]) -> io::Result<Option<Reply<'a>>> {
    if buf.is_empty() {
        return Ok(None);
    }
    let len = u32_at(buf, 0).map_or(0, |len| len as usize);
    let (Some(msg), Some(kind), Some(flags), Some(seq)) =
        (buf.get(..len), u16_at(buf, 4), u16_at(buf, 6), u32_at(buf, 8))
    else {
        return Err(io::ErrorKind::InvalidData.into());
    };
    if len < NLMSG_HDRLEN {
        return Err(io::ErrorKind::InvalidData.into());
    }
    *buf = buf.get(align(len)..).unwrap_or_default();
    Ok(Some(Reply { kind, flags, seq, payload: &msg[NLMSG_HDRLEN..] }))
}

/// The attributes in `bytes`, as (type, value); it stops at a malformed one, as the kernel's
/// `nla_for_each_attr` does.
pub(crate) struct Attrs<'a>(pub &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from(u16_at(self.0, 0)?);
        let kind = u16_at(self.0, 2)?;
        let value = self.0.get(4..len)?;
        self.0 = self.0.get(align(len)..).unwrap_or_default();
        Some((kind & NLA_TYPE_MASK, value))
    }
}

/// The attributes after a fixed header of `header` bytes.
pub(crate) fn attrs(payload: &[u8], header: usize) -> Attrs<'_> {
    Attrs(payload.get(header..).unwrap_or_default())
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// An address attribute's value, read for `family`.
pub(crate) fn ip(family: u8, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested_lengths_cover_their_children() {
        let mut msg = Message::request(36, NLM_F_CREATE, &[1, 2, 3]);
        let outer = msg.begin(2);
        msg.attr(1, b"abcde");
        msg.end(outer);
        let bytes = msg.finish(9).to_vec();
        assert_eq!(bytes.len(), 16 + 4 + 4 + 12);
        assert_eq!(u32_at(&bytes, 0), Some(36));
        assert_eq!(u16_at(&bytes, 6), Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE));
        assert_eq!(u32_at(&bytes, 8), Some(9));
        assert_eq!(&bytes[16..20], &[1, 2, 3, 0]);
        // The outer length counts the inner attribute's padding; the inner one does not.
        assert_eq!(u16_at(&bytes, 20), Some(4 + 12));
        assert_eq!(u16_at(&bytes, 24), Some(4 + 5));

        let mut rest = &bytes[..];
        let reply = next_reply(&mut rest).unwrap().unwrap();
        assert!(rest.is_empty());
        assert_eq!((reply.kind, reply.seq), (36, 9));
        let (kind, nested) = attrs(reply.payload, 4).next().unwrap();
        assert_eq!(kind, 2);
        assert_eq!(Attrs(nested).collect::<Vec<_>>(), [(1, &b"abcde"[..])]);
    }

    #[test]
    fn a_truncated_reply_is_an_error_and_a_truncated_attribute_ends_the_list() {
        let mut msg = Message::dump(18, &[0; 4]);
        let bytes = msg.finish(1).to_vec();
        assert!(next_reply(&mut &bytes[..bytes.len() - 1]).is_err());
        assert!(next_reply(&mut &[8u8, 0, 0, 0, 0, 0, 0, 0][..]).is_err());
        assert_eq!(Attrs(&[8, 0, 1, 0, 0, 0]).count(), 0);
        assert_eq!(Attrs(&[2, 0, 1, 0]).count(), 0);
    }

    #[test]
    fn addresses_are_read_by_family() {
        assert_eq!(ip(AF_INET, &[10, 0, 0, 1]), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(ip(AF_INET6, &[0; 16]), Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        assert_eq!(ip(AF_INET6, &[0; 4]), None);
    }
}
