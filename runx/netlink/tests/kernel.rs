//! Against the running kernel: each test runs on a thread of its own in a new network namespace
//! (`unshare(CLONE_NEWNET)` acts on the calling thread only), so tests cannot see each other's
//! links or the host's. It needs root; without it the tests fail, saying so. `ip` and `tc`
//! (iproute2) make the devices and check the results: a child process starts in the network
//! namespace of the thread that spawns it.

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::process::Command;
use std::thread;

use runx_netlink::{Address, LinkChange, Route, RouteChange, Socket};

const RT_TABLE_MAIN: u32 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_LINK: u8 = 253;

/// Runs `test` on a new thread in a new network namespace of its own.
fn in_new_netns<T: Send>(test: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare_netns();
                test()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn unshare_netns() {
    // SAFETY: a plain syscall; it moves only this thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let error = io::Error::last_os_error();
        panic!("unshare(CLONE_NEWNET): {error}: these tests need root (CAP_SYS_ADMIN) to make network namespaces");
    }
}

/// Runs an iproute2 command line in this thread's namespace; its output.
fn run(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let out = Command::new(words[0]).args(&words[1..]).output().unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A veth pair v0/v1 in this thread's namespace, and their indexes.
fn veth(socket: &Socket) -> (u32, u32) {
    run("ip link add v0 type veth peer name v1");
    (socket.link_index("v0").unwrap(), socket.link_index("v1").unwrap())
}

fn up(socket: &Socket, index: u32) {
    socket.set_link(index, &LinkChange { up: Some(true), ..LinkChange::default() }).unwrap();
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn main_routes(socket: &Socket) -> Vec<Route> {
    socket.routes().unwrap().into_iter().filter(|r| r.table == RT_TABLE_MAIN).collect()
}

#[test]
fn a_new_namespace_has_only_loopback_and_commands_run_in_the_threads_namespace() {
    let host = Socket::open().unwrap();
    in_new_netns(|| {
        let socket = Socket::open().unwrap();
        let links = socket.links().unwrap();
        assert_eq!(links.len(), 1, "{links:?}");
        assert!(links[0].is_loopback && !links[0].up && links[0].name == "lo", "{links:?}");
        assert_eq!(socket.link_index("lo").unwrap(), links[0].index);

        let (v0, v1) = veth(&socket);
        let links = socket.links().unwrap();
        let mut names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["lo", "v0", "v1"]);
        let link = links.iter().find(|l| l.index == v0).unwrap();
        assert!(link.mac.is_some() && link.mtu == 1500 && !link.up && !link.is_loopback, "{link:?}");
        assert_ne!(v0, v1);
    });
    // The devices were made in the thread's namespace, not the host's.
    assert_eq!(host.link_index("v0").unwrap_err().raw_os_error(), Some(libc::ENODEV));
}

#[test]
fn set_link_renames_sets_mac_and_mtu_and_brings_the_link_up_in_one_request() {
    in_new_netns(|| {
        let socket = Socket::open().unwrap();
        let (v0, _) = veth(&socket);
        let mac = [0x0a, 0x58, 0x0a, 0x58, 0x00, 0x07];
        let change = LinkChange { name: Some("eth0"), mac: Some(mac), mtu: Some(1400), up: Some(true), netns: None };
        socket.set_link(v0, &change).unwrap();
        let link = socket.links().unwrap().into_iter().find(|l| l.index == v0).unwrap();
        assert_eq!((link.name.as_str(), link.mac, link.mtu, link.up), ("eth0", Some(mac), 1400, true));
        assert!(run("ip link show dev eth0").contains("0a:58:0a:58:00:07"));

        socket.set_link(v0, &LinkChange { up: Some(false), ..LinkChange::default() }).unwrap();
        let link = socket.links().unwrap().into_iter().find(|l| l.index == v0).unwrap();
        assert_eq!((link.name.as_str(), link.mtu, link.up), ("eth0", 1400, false));
    });
}

#[test]
fn errors_carry_the_kernels_errno_and_the_socket_stays_usable() {
    in_new_netns(|| {
        let socket = Socket::open().unwrap();
        let (v0, _) = veth(&socket);
        let error = socket.set_link(9999, &LinkChange { up: Some(true), ..LinkChange::default() }).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENODEV), "{error}");
        assert_eq!(socket.link_index("nothere").unwrap_err().raw_os_error(), Some(libc::ENODEV));
        let taken = LinkChange { name: Some("v1"), ..LinkChange::default() };
        assert_eq!(socket.set_link(v0, &taken).unwrap_err().raw_os_error(), Some(libc::EEXIST));
        assert_eq!(socket.links().unwrap().len(), 3);
    });
}

#[test]
fn addresses_v4_and_v6_are_added_and_listed_and_v6_skips_duplicate_detection() {
    in_new_netns(|| {
        let socket = Socket::open().unwrap();
        let (v0, v1) = veth(&socket);
        up(&socket, v0);
        up(&socket, v1);
        socket.add_address(v0, ip("10.88.0.7"), 16).unwrap();
        socket.add_address(v0, ip("fd88::7"), 64).unwrap();
        let error = socket.add_address(v0, ip("10.88.0.7"), 16).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EEXIST));

        let addresses = socket.addresses().unwrap();
        for expected in [
            Address { index: v0, addr: ip("10.88.0.7"), prefix: 16, scope: 0 },
            Address { index: v0, addr: ip("fd88::7"), prefix: 64, scope: 0 },
        ] {
            assert!(addresses.contains(&expected), "{expected:?} not in {addresses:?}");
        }
        // Without IFA_F_NODAD it would be "tentative" for a second of DAD, as the kernel's
        // link-local address is here.
        let shown = run("ip -6 addr show dev v0");
        let line = shown.lines().find(|l| l.contains("fd88::7/64")).unwrap_or_else(|| panic!("{shown}"));
        assert!(line.contains("nodad") && !line.contains("tentative"), "{shown}");
    });
}

#[test]
fn routes_on_link_and_through_a_gateway_are_added_and_listed_for_v4_and_v6() {
    in_new_netns(|| {
        let socket = Socket::open().unwrap();
        let (v0, v1) = veth(&socket);
        up(&socket, v0);
        up(&socket, v1);
        let through = RouteChange { dst: ip("0.0.0.0"), prefix: 0, gateway: Some(ip("10.88.0.1")), oif: v0 };
        let error = socket.add_route(&through).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENETUNREACH), "a gateway with no route to it: {error}");

        let changes = [
            RouteChange { dst: ip("10.88.0.0"), prefix: 16, gateway: None, oif: v0 },
            through,
            RouteChange { dst: ip("fd88::"), prefix: 64, gateway: None, oif: v0 },
            RouteChange { dst: ip("::"), prefix: 0, gateway: Some(ip("fd88::1")), oif: v0 },
        ];
        for change in &changes {
            socket.add_route(change).unwrap_or_else(|e| panic!("{change:?}: {e}"));
        }
        assert_eq!(socket.add_route(&changes[0]).unwrap_err().raw_os_error(), Some(libc::EEXIST));

        let routes = main_routes(&socket);
        for change in &changes {
            let route = routes
                .iter()
                .find(|r| r.dst == change.dst && r.prefix == change.prefix)
                .unwrap_or_else(|| panic!("{change:?} not in {routes:?}"));
            assert_eq!((route.gateway, route.oif, route.protocol), (change.gateway, Some(v0), RTPROT_BOOT));
            assert!(!route.multipath && route.kind == 1, "{route:?}");
            // IPv6 routes have no scope: the kernel reports them all as universe.
            let scope = if change.gateway.is_none() && change.dst.is_ipv4() { RT_SCOPE_LINK } else { 0 };
            assert_eq!(route.scope, scope, "{route:?}");
        }
        let shown = run("ip route show");
        // `ip route` leaves out "proto boot", its own default.
        assert!(shown.contains("default via 10.88.0.1 dev v0 \n"), "{shown}");
        assert!(shown.contains("10.88.0.0/16 dev v0 scope link \n"), "{shown}");
        let shown = run("ip -6 route show");
        assert!(shown.contains("default via fd88::1 dev v0 metric 1024 pref medium"), "{shown}");
    });
}

#[test]
fn a_link_moves_into_another_namespace_and_is_renamed_there() {
    // The other namespace lives as long as the descriptor and the socket opened in it.
    let (other_ns, other) = thread::spawn(|| {
        unshare_netns();
        (File::open("/proc/thread-self/ns/net").unwrap(), Socket::open().unwrap())
    })
    .join()
    .unwrap();
    in_new_netns(|| {
        let socket = Socket::open().unwrap();
        let (_, v1) = veth(&socket);
        let change =
            LinkChange { name: Some("eth1"), mtu: Some(9000), netns: Some(other_ns.as_fd()), ..LinkChange::default() };
        socket.set_link(v1, &change).unwrap();
        assert_eq!(socket.link_index("v1").unwrap_err().raw_os_error(), Some(libc::ENODEV));
        assert!(socket.links().unwrap().iter().all(|l| l.name != "eth1"));
    });
    let moved = other.links().unwrap().into_iter().find(|l| l.name == "eth1");
    assert!(moved.as_ref().is_some_and(|l| l.mtu == 9000), "{moved:?}");
}

#[test]
fn an_ingress_redirect_is_added_as_tc_would_and_goes_with_its_qdisc() {
    in_new_netns(|| {
        let socket = Socket::open().unwrap();
        let (v0, v1) = veth(&socket);
        up(&socket, v0);
        up(&socket, v1);
        let error = socket.del_ingress_qdisc(v0).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "never had one: {error}");

        socket.add_ingress_qdisc(v0).unwrap();
        assert_eq!(socket.add_ingress_qdisc(v0).unwrap_err().raw_os_error(), Some(libc::EEXIST));
        assert!(run("tc qdisc show dev v0").contains("qdisc ingress ffff: parent ffff:fff1"));
        socket.redirect_ingress(v0, v1).unwrap();
        let shown = run("tc filter show dev v0 ingress");
        assert!(shown.contains("filter parent ffff: protocol all pref 1 u32"), "{shown}");
        assert!(shown.contains("match 00000000/00000000 at 0"), "{shown}");
        assert!(shown.contains("mirred (Egress Redirect to device v1) stolen"), "{shown}");

        socket.del_ingress_qdisc(v0).unwrap();
        assert_eq!(run("tc filter show dev v0 ingress"), "");
        assert!(!run("tc qdisc show dev v0").contains("ingress"));
        let error = socket.del_ingress_qdisc(v0).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "had one before: {error}");
    });
}
