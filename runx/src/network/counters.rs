//! A guest's traffic, from its vif backend's counters in the container's namespace
//! (`/proc/PID/net/dev` of a process in it). The backend sees the guest's traffic from the
//! other end: what it transmits, the guest received.

use std::io;
use std::path::Path;

/// One interface's counters, from the guest's side, named in JSON as runc's stats name them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Counters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The guest's counters behind `vif` in the namespace of process `pid`; None when the
/// namespace has no such interface.
pub fn guest_counters(pid: i32, vif: &str) -> io::Result<Option<Counters>> {
    let text = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("net/dev"))?;
    Ok(parse_net_dev(&text, vif))
}

/// Reads `vif`'s row of /proc/net/dev (`name: rx bytes packets errs drop fifo frame compressed
/// multicast, tx bytes packets errs drop ...`) with receive and transmit swapped.
fn parse_net_dev(text: &str, vif: &str) -> Option<Counters> {
    let row = text.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        (name.trim() == vif).then_some(rest)
    })?;
    let n: Vec<u64> = row.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    let backend = n.get(..12)?;
    Some(Counters {
        rx_bytes: backend[8],
        rx_packets: backend[9],
        rx_errors: backend[10],
        rx_dropped: backend[11],
        tx_bytes: backend[0],
        tx_packets: backend[1],
        tx_errors: backend[2],
        tx_dropped: backend[3],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0:    9000      90    0    1    0     0          0         0     5000      50    0    0    0     0       0          0
vif7.0:    1200      12    1    2    0     0          0         0    34000     340    3    4    0     0       0          0
";

    #[test]
    fn the_backends_transmit_is_the_guests_receive() {
        let c = parse_net_dev(NET_DEV, "vif7.0").unwrap();
        assert_eq!((c.rx_bytes, c.rx_packets, c.rx_errors, c.rx_dropped), (34000, 340, 3, 4));
        assert_eq!((c.tx_bytes, c.tx_packets, c.tx_errors, c.tx_dropped), (1200, 12, 1, 2));
        assert!(parse_net_dev(NET_DEV, "vif8.0").is_none());
        assert!(parse_net_dev(NET_DEV, "vif7").is_none());
        assert!(parse_net_dev("vif7.0: 1 2 3\n", "vif7.0").is_none());
    }
}
