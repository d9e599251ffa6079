//! Traffic control: an ingress qdisc and a filter on it that redirects every packet to another
//! link, which joins a vif to the container's interface. Kata's "tcfilter" mode and the CNI
//! bandwidth plugin do the same with a u32 filter (`tcmsg`, include/uapi/linux/pkt_sched.h,
//! pkt_cls.h and tc_act/tc_mirred.h), the equivalent of:
//!
//! ```text
//! tc qdisc add dev FROM ingress
//! tc filter add dev FROM parent ffff: protocol all prio 1 u32 match u8 0 0 \
//!     action mirred egress redirect dev TO
//! ```

use std::io;

use crate::message::{Message, NLM_F_CREATE, NLM_F_EXCL};
use crate::Socket;

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_NEWTFILTER: u16 = 44;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
/// The ingress qdisc's place (`TC_H_INGRESS`) and its handle, `ffff:`.
const TC_H_INGRESS: u32 = 0xffff_fff1;
const INGRESS_HANDLE: u32 = 0xffff_0000;
const ETH_P_ALL: u16 = 0x0003;
const PRIO: u32 = 1;
const TCA_U32_SEL: u16 = 5;
const TCA_U32_ACT: u16 = 7;
/// A match ends the search with the filter's actions (tc sets it whenever there is an action).
const TC_U32_TERMINAL: u8 = 1;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_MIRRED_PARMS: u16 = 2;
/// The packet is consumed by the redirect, not also delivered on `from`.
const TC_ACT_STOLEN: u32 = 4;
const TCA_EGRESS_REDIR: u32 = 1;

fn tcmsg(index: u32, handle: u32, parent: u32, info: u32) -> [u8; 20] {
    let mut header = [0; 20];
    // Family and padding stay 0.
    for (i, word) in [index, handle, parent, info].into_iter().enumerate() {
        header[4 + 4 * i..8 + 4 * i].copy_from_slice(&word.to_ne_bytes());
    }
    header
}

fn add_ingress_qdisc_message(index: u32) -> Message {
    let header = tcmsg(index, INGRESS_HANDLE, TC_H_INGRESS, 0);
    let mut msg = Message::request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, &header);
    msg.attr_str(TCA_KIND, "ingress");
    msg
}

fn redirect_ingress_message(from: u32, to: u32) -> Message {
    // The filter's priority, then its protocol in network byte order.
    let info = PRIO << 16 | u32::from(ETH_P_ALL.to_be());
    let header = tcmsg(from, 0, INGRESS_HANDLE, info);
    let mut msg = Message::request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, &header);
    msg.attr_str(TCA_KIND, "u32");
    let options = msg.begin(TCA_OPTIONS);
    // `match u8 0 0 at 0`: a tc_u32_sel with one tc_u32_key whose mask, value and offset are 0.
    let mut selector = [0u8; 16 + 16];
    selector[0] = TC_U32_TERMINAL;
    selector[2] = 1;
    msg.attr(TCA_U32_SEL, &selector);
    let actions = msg.begin(TCA_U32_ACT);
    let first = msg.begin(1);
    msg.attr_str(TCA_ACT_KIND, "mirred");
    let action = msg.begin(TCA_ACT_OPTIONS);
    // tc_mirred: tc_gen's index, capab, action, refcnt and bindcnt, then eaction and ifindex.
    let mut parms = [0u8; 28];
    parms[8..12].copy_from_slice(&TC_ACT_STOLEN.to_ne_bytes());
    parms[20..24].copy_from_slice(&TCA_EGRESS_REDIR.to_ne_bytes());
    parms[24..28].copy_from_slice(&to.to_ne_bytes());
    msg.attr(TCA_MIRRED_PARMS, &parms);
    for at in [action, first, actions, options] {
        msg.end(at);
    }
    msg
}

impl Socket {
    /// Adds the ingress qdisc (`ffff:`) to a link; EEXIST when it has one.
    pub fn add_ingress_qdisc(&self, index: u32) -> io::Result<()> {
        self.ack(&mut add_ingress_qdisc_message(index))
    }

    /// Deletes a link's ingress qdisc and the filters on it. When it has none the error is
    /// ENOENT (`io::ErrorKind::NotFound`): the handle is left at 0, which the kernel otherwise
    /// answers with EINVAL once a link has had an ingress qdisc.
    pub fn del_ingress_qdisc(&self, index: u32) -> io::Result<()> {
        self.ack(&mut Message::request(RTM_DELQDISC, 0, &tcmsg(index, 0, TC_H_INGRESS, 0)))
    }

    /// Redirects every packet arriving on `from` to leave through `to`, with a filter at
    /// priority 1 on `from`'s ingress qdisc. Both links must be in the socket's namespace and
    /// stay there (a move drops the redirect), and `to` must be up or mirred drops the packets.
    pub fn redirect_ingress(&self, from: u32, to: u32) -> io::Result<()> {
        self.ack(&mut redirect_ingress_message(from, to))
    }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn the_ingress_qdisc_sits_at_ffff() {
        #[rustfmt::skip]
        let expected = [
            48, 0, 0, 0, 36, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0xff, 0xff, 0xf1, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            12, 0, 1, 0, b'i', b'n', b'g', b'r', b'e', b's', b's', 0,
        ];
        assert_eq!(add_ingress_qdisc_message(4).finish(1), expected);
    }

    #[test]
    fn the_redirect_is_a_u32_filter_holding_a_mirred_action() {
        let bytes = redirect_ingress_message(4, 9).finish(1).to_vec();
        // tcmsg: index 4, handle 0, parent ffff:, info prio 1 and htons(ETH_P_ALL).
        assert_eq!(&bytes[20..36], [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 3, 1, 0]);
        #[rustfmt::skip]
        let attrs = [
            8, 0, 1, 0, b'u', b'3', b'2', 0,            // TCA_KIND
            96, 0, 2, 0,                                // TCA_OPTIONS
            36, 0, 5, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // TCA_U32_SEL, one key
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            56, 0, 7, 0,                                // TCA_U32_ACT
            52, 0, 1, 0,                                // the first action
            11, 0, 1, 0, b'm', b'i', b'r', b'r', b'e', b'd', 0, 0, // TCA_ACT_KIND
            36, 0, 2, 0,                                // TCA_ACT_OPTIONS
            32, 0, 2, 0,                                // TCA_MIRRED_PARMS
            0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // stolen
            1, 0, 0, 0, 9, 0, 0, 0,                     // egress redirect to 9
        ];
        assert_eq!(&bytes[36..], attrs);
        assert_eq!(bytes.len(), 36 + attrs.len());
    }
}
