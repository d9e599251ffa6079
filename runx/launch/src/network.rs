//! The guest's network, as the runtime hands it to runx-init at `start` through xenstore
//! (`keys::NETWORK`): the engine sets the network up only after `create` (`ctr run --cni` wires
//! the monitor's namespace then), so it cannot travel in the launch spec. One fact per line,
//! addresses in hex: the guest parses it without an address parser.
//!
//! ```text
//! runx-network 1
//! link eth0 0a580a580007 1500
//! addr 0a580007 16
//! addr fd880000000000000000000000000007 64
//! route 00000000 0 0a580001
//! route fd880000000000000000000000000000 64 -
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The first line, with the format's version.
const HEADER: &str = "runx-network 1";
/// The most a xenstore value holds.
pub const MAX_BYTES: usize = 4096;

/// An address and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub ip: IpAddr,
    pub prefix: u8,
}

/// A route through the interface: to `dst`, via `gateway` or on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dst: Cidr,
    pub gateway: Option<IpAddr>,
}

/// The interface the guest gets: the namespace's, as the engine made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNetwork {
    /// Its name in the namespace (`eth0`), which the guest's interface takes.
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub addresses: Vec<Cidr>,
    /// In the order the guest adds them: routes on the link before those through a gateway.
    pub routes: Vec<Route>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("guest network, line {line}: {why}")]
pub struct NetworkError {
    pub line: usize,
    pub why: &'static str,
}

fn ip_hex(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => hex::encode(v4.octets()),
        IpAddr::V6(v6) => hex::encode(v6.octets()),
    }
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

fn ip_unhex(text: &str) -> Option<IpAddr> {
    match text.len() {
        8 => unhex::<4>(text).map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        32 => unhex::<16>(text).map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        _ => None,
    }
}

fn cidr(ip: &str, prefix: &str) -> Option<Cidr> {
    let ip = ip_unhex(ip)?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some(Cidr { ip, prefix })
}

impl GuestNetwork {
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\nlink {} {} {}\n", self.name, hex::encode(self.mac), self.mtu);
        for a in &self.addresses {
            text += &format!("addr {} {}\n", ip_hex(&a.ip), a.prefix);
        }
        for r in &self.routes {
            let via = r.gateway.as_ref().map_or_else(|| "-".to_owned(), ip_hex);
            text += &format!("route {} {} {via}\n", ip_hex(&r.dst.ip), r.dst.prefix);
        }
        text
    }

    /// Reads what `to_text` wrote. Small on purpose: runx-init links it.
    pub fn parse(text: &str) -> Result<Self, NetworkError> {
        let mut lines = text.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(NetworkError {
                line: 1,
                why: "not `runx-network 1`: the runtime and runx-init must come from one build",
            });
        }
        let mut network = GuestNetwork { name: String::new(), mac: [0; 6], mtu: 0, addresses: vec![], routes: vec![] };
        for (i, line) in lines.enumerate().filter(|(_, line)| !line.is_empty()) {
            let mut words = line.split(' ');
            let mut word = || words.next().unwrap_or_default();
            let why = match word() {
                "link" => {
                    network.name = word().to_owned();
                    let (mac, mtu) = (unhex::<6>(word()), word().parse().ok());
                    network.mac = mac.unwrap_or_default();
                    network.mtu = mtu.unwrap_or_default();
                    let named = !network.name.is_empty() && network.name.len() < 16 && !network.name.contains('/');
                    match (named, mac, mtu) {
                        (false, _, _) => "the interface name is not one Linux takes",
                        (_, None, _) => "the MAC is not 12 hex digits",
                        (_, _, None) => "the MTU is not a number",
                        _ => "",
                    }
                }
                "addr" => match cidr(word(), word()) {
                    Some(address) => {
                        network.addresses.push(address);
                        ""
                    }
                    None => "not an address and prefix",
                },
                "route" => match (cidr(word(), word()), word()) {
                    (Some(dst), "-") => {
                        network.routes.push(Route { dst, gateway: None });
                        ""
                    }
                    (Some(dst), via) => match ip_unhex(via) {
                        Some(gateway) => {
                            network.routes.push(Route { dst, gateway: Some(gateway) });
                            ""
                        }
                        None => "the gateway is not an address",
                    },
                    (None, _) => "not a destination and prefix",
                },
                _ => "not a link, addr or route line",
            };
            if !why.is_empty() {
                return Err(NetworkError { line: i + 2, why });
            }
        }
        match network.name.is_empty() {
            true => Err(NetworkError { line: 1, why: "no link line" }),
            false => Ok(network),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GuestNetwork {
        GuestNetwork {
            name: "eth0".into(),
            mac: [0x0a, 0x58, 0x0a, 0x58, 0x00, 0x07],
            mtu: 1500,
            addresses: vec![
                Cidr { ip: "10.88.0.7".parse().unwrap(), prefix: 16 },
                Cidr { ip: "fd88::7".parse().unwrap(), prefix: 64 },
            ],
            routes: vec![
                Route { dst: Cidr { ip: "fd88::".parse().unwrap(), prefix: 64 }, gateway: None },
                Route {
                    dst: Cidr { ip: "0.0.0.0".parse().unwrap(), prefix: 0 },
                    gateway: Some("10.88.0.1".parse().unwrap()),
                },
            ],
        }
    }

    #[test]
    fn the_guest_reads_what_the_host_writes() {
        let text = sample().to_text();
        assert_eq!(
            text,
            "runx-network 1\nlink eth0 0a580a580007 1500\naddr 0a580007 16\naddr fd880000000000000000000000000007 64\n\
             route fd880000000000000000000000000000 64 -\nroute 00000000 0 0a580001\n"
        );
        assert_eq!(GuestNetwork::parse(&text).unwrap(), sample());
    }

    #[test]
    fn refuses_what_it_cannot_apply() {
        let text = sample().to_text();
        let cases = [
            (text.replace("runx-network 1", "runx-network 2"), 1, "not `runx-network 1`"),
            (text.replace("0a580a580007", "0a58"), 2, "MAC"),
            (text.replace("addr 0a580007 16", "addr 0a580007 33"), 3, "not an address and prefix"),
            (text.replace("0a580001", "zz580001"), 6, "gateway"),
            (text.replace("link eth0", "link ../x"), 2, "interface name"),
            (text.replace("link eth0 0a580a580007 1500\n", ""), 1, "no link line"),
            (text + "mtu 9000\n", 7, "not a link, addr or route line"),
        ];
        for (text, line, why) in cases {
            let err = GuestNetwork::parse(&text).unwrap_err();
            assert_eq!(err.line, line, "{err}");
            assert!(err.why.contains(why), "{err}");
        }
    }
}
