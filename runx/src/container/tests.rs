//! The lifecycle on an in-memory Xen and network: every step, every fault, every kill.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;
use crate::network::{self, memory::MemoryNet};
use crate::xen::memory::{Killed, MemoryXen};

/// A state root, a bundle and a host config in a folder of their own, on an in-memory Xen.
struct Lab {
    dir: PathBuf,
    xen: MemoryXen,
    net: MemoryNet,
    runtime: Runtime,
}

impl Lab {
    fn new(tag: &str) -> Self {
        // Tests run in parallel and some make labs with the same tag.
        static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("runx-container-{tag}-{}-{serial}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bundle/rootfs/bin")).unwrap();
        fs::write(dir.join("bundle/rootfs/bin/app"), b"#!/bin/sh\n").unwrap();
        // A network namespace of its own, as ctr asks: the guest gets a vif.
        let config = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["/bin/app"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"namespaces":[{"type":"network"}]}}"#;
        fs::write(dir.join("bundle/config.json"), config).unwrap();
        fs::write(dir.join("kernel"), b"kernel").unwrap();
        fs::write(dir.join("initramfs.cpio"), b"").unwrap();
        let host =
            HostConfig { kernel: dir.join("kernel"), initramfs: dir.join("initramfs.cpio"), ..HostConfig::default() };
        let xen = MemoryXen::default();
        let net = MemoryNet::default();
        let runtime = Runtime {
            store: Store::new(&dir.join("root")),
            host,
            xen: Box::new(xen.clone()),
            net: Box::new(net.clone()),
        };
        Self { dir, xen, net, runtime }
    }

    /// `create`, with `interrupt` deciding at each step whether a stop signal came.
    fn create_with(
        &self,
        id: &str,
        interrupt: &dyn Fn(usize) -> Option<i32>,
    ) -> Result<ContainerState, ContainerError> {
        let xen = self.xen.clone();
        let spawn =
            move |guest: &Guest<'_>, _: &NetworkNamespace, ready: OwnedFd| xen.spawn_monitor(guest.domid, ready);
        let steps = std::cell::Cell::new(0);
        let interrupted = || {
            steps.set(steps.get() + 1);
            interrupt(steps.get() - 1)
        };
        let options = CreateOptions { spawn_monitor: &spawn, interrupted: &interrupted };
        self.runtime.create(id, &self.dir.join("bundle"), &options)
    }

    fn create(&self, id: &str) -> Result<ContainerState, ContainerError> {
        self.create_with(id, &|_| None)
    }

    /// Only the admin's domains are left, no container state, and the archive cache holds no
    /// more than what finished creates packed.
    fn assert_left(&self, admin: &[u32], cached: usize, when: &str) {
        let domids: Vec<u32> = self.xen.domains().into_keys().collect();
        assert_eq!(domids, admin, "{when}: domains left");
        assert!(self.runtime.store.ids().unwrap().is_empty(), "{when}: state left");
        let names = |dir: PathBuf| -> Vec<String> {
            fs::read_dir(dir)
                .into_iter()
                .flatten()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        let root = names(self.dir.join("root"));
        assert!(root.iter().all(|n| n == ".archive-cache"), "{when}: {root:?} left in the state root");
        let cache = names(self.runtime.store.archive_cache_dir());
        assert_eq!(cache.len(), cached, "{when}: {cache:?} in the archive cache");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// How many calls to Xen a create makes.
fn calls_of_a_create() -> usize {
    let lab = Lab::new("probe");
    lab.create("probe").unwrap();
    let calls = lab.xen.calls();
    assert!(calls >= 3, "create made only {calls} calls to Xen");
    calls
}

#[test]
fn a_container_runs_through_its_lifecycle_on_its_own_domain() {
    let lab = Lab::new("lifecycle");
    let state = lab.create("web").unwrap();
    assert_eq!(state.status, Status::Created);
    let domain = &lab.xen.domains()[&state.domid];
    assert_eq!((domain.name.as_str(), domain.uuid.as_str()), (state.domain_name.as_str(), state.uuid.as_str()));
    assert!(state.domain_name.ends_with("-web"), "{}", state.domain_name);
    lab.runtime.start("web").unwrap();
    assert_eq!(lab.xen.key(&runx_launch::keys::of_domain(state.domid, runx_launch::keys::START)).as_deref(), Some("1"));
    lab.runtime.kill("web", 15).unwrap();
    assert_eq!(
        lab.xen.key(&runx_launch::keys::of_domain(state.domid, runx_launch::keys::SIGNAL)).as_deref(),
        Some("15")
    );
    lab.runtime.kill("web", 37).unwrap();
    assert!(matches!(lab.runtime.delete("web", false), Err(ContainerError::NotStopped { .. })));
    lab.runtime.delete("web", true).unwrap();
    lab.assert_left(&[], 1, "after delete");
}

fn key(lab: &Lab, domid: u32, key: &str) -> Option<String> {
    lab.xen.key(&runx_launch::keys::of_domain(domid, key))
}

/// What the CNI bridge plugin leaves in a namespace.
fn cni_facts() -> network::Facts {
    let link = |index, name: &str, mac| runx_netlink::Link {
        index,
        name: name.into(),
        mac,
        mtu: 1500,
        up: true,
        is_loopback: mac.is_none(),
    };
    network::Facts {
        links: vec![link(1, "lo", None), link(2, "eth0", Some([0x0a, 0x58, 0x0a, 0x58, 0, 7]))],
        addresses: vec![runx_netlink::Address { index: 2, addr: "10.88.0.7".parse().unwrap(), prefix: 16, scope: 0 }],
        routes: vec![runx_netlink::Route {
            dst: "0.0.0.0".parse().unwrap(),
            prefix: 0,
            gateway: Some("10.88.0.1".parse().unwrap()),
            oif: Some(2),
            protocol: 3,
            scope: 0,
            kind: 1,
            table: 254,
            multipath: false,
        }],
    }
}

#[test]
fn a_guest_is_wired_to_the_interface_the_engine_made_between_create_and_start() {
    let lab = Lab::new("wired");
    let state = lab.create("web").unwrap();
    let vif = format!("vif{}.0", state.domid);
    assert_eq!(*lab.net.calls.borrow(), [format!("adopt {vif}")]);
    let hotplug = format!("/local/domain/0/backend/vif/{}/0/hotplug-status", state.domid);
    assert_eq!(lab.xen.key(&hotplug).as_deref(), Some("connected"), "netback is told the vif is ready");
    assert!(key(&lab, state.domid, runx_launch::keys::NETWORK).is_none(), "nothing is known before start");

    *lab.net.facts.borrow_mut() = cni_facts();
    lab.runtime.start("web").unwrap();
    assert_eq!(lab.net.calls.borrow()[1..], ["facts".to_owned(), format!("wire {vif} eth0 1500")]);
    let text = key(&lab, state.domid, runx_launch::keys::NETWORK).expect("the guest's network");
    let network = runx_launch::network::GuestNetwork::parse(&text).unwrap();
    assert_eq!((network.name.as_str(), network.addresses.len(), network.routes.len()), ("eth0", 1, 1));
    assert_eq!(lab.runtime.load("web").unwrap().1.wired.as_deref(), Some("eth0"));
    lab.runtime.delete("web", true).unwrap();
    assert_eq!(lab.net.calls.borrow().last().map(String::as_str), Some("unwire eth0"));
    lab.assert_left(&[], 1, "after delete");
}

#[test]
fn a_namespace_without_an_interface_leaves_the_guest_loopback_only() {
    let lab = Lab::new("unwired");
    let state = lab.create("web").unwrap();
    lab.runtime.start("web").unwrap();
    assert!(key(&lab, state.domid, runx_launch::keys::NETWORK).is_none());
    assert_eq!(key(&lab, state.domid, runx_launch::keys::START).as_deref(), Some("1"));
    assert_eq!(lab.net.calls.borrow().len(), 2, "adopt and facts: {:?}", lab.net.calls.borrow());
    lab.runtime.delete("web", true).unwrap();
    assert_eq!(lab.net.calls.borrow().len(), 2, "nothing to unwire");
}

#[test]
fn a_failed_wiring_fails_start_and_undoes_itself() {
    let lab = Lab::new("miswired");
    let state = lab.create("web").unwrap();
    *lab.net.facts.borrow_mut() = cni_facts();
    *lab.net.fail.borrow_mut() = Some("wire");
    let err = lab.runtime.start("web").unwrap_err().to_string();
    assert!(err.contains("network: wire"), "{err}");
    assert_eq!(lab.net.calls.borrow().last().map(String::as_str), Some("unwire eth0"));
    assert!(key(&lab, state.domid, runx_launch::keys::START).is_none(), "the process never ran");
    assert!(key(&lab, state.domid, runx_launch::keys::NETWORK).is_none());
    assert_eq!(lab.runtime.load("web").unwrap().1.wired, None);
    assert!(lab.xen.domains().is_empty(), "the container stopped: containerd deletes only a stopped task");
    lab.runtime.delete("web", false).unwrap();
    lab.assert_left(&[], 1, "after delete");

    let lab = Lab::new("unadopted");
    *lab.net.fail.borrow_mut() = Some("adopt");
    let err = lab.create("web").unwrap_err().to_string();
    assert!(err.contains("network: adopt"), "{err}");
    lab.assert_left(&[], 0, "after the failed create");
}

#[test]
fn a_failed_create_never_destroys_a_domain_it_did_not_make() {
    let lab = Lab::new("taken");
    // An admin's VM that has the very name runx would give the container's domain.
    let name = lab.runtime.store.domain_name(&ContainerId::parse("web").unwrap());
    let admin = lab.xen.add_domain(&name);
    let err = lab.create("web").unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    lab.assert_left(&[admin], 0, "after the failed create");
    lab.runtime.delete("web", true).unwrap_err();
    assert_eq!(lab.xen.domains().len(), 1, "delete --force of a container that does not exist");
}

#[test]
fn numeric_ids_never_address_another_domain() {
    let lab = Lab::new("numeric");
    let admin = lab.xen.add_domain("admin-vm");
    let id = admin.to_string();
    let state = lab.create(&id).unwrap();
    assert_ne!(state.domid, admin);
    lab.runtime.start(&id).unwrap();
    lab.runtime.kill(&id, Signal::SIGKILL as i32).unwrap();
    assert_eq!(lab.xen.domains().into_keys().collect::<Vec<_>>(), [admin]);
    lab.runtime.delete(&id, true).unwrap();
    lab.assert_left(&[admin], 1, "after delete");
}

#[test]
fn a_domain_whose_uuid_changed_is_not_touched() {
    let lab = Lab::new("recycled");
    let state = lab.create("web").unwrap();
    // The domain went and its domid came to another domain (xl reuses domids in the end).
    lab.runtime.xen.destroy_domid(state.domid).unwrap();
    lab.xen.write(&runx_launch::keys::of_domain(state.domid, "vm"), "/vm/someone-else").unwrap();
    lab.xen.write(&runx_launch::keys::of_domain(state.domid, "name"), "someone-else").unwrap();
    let err = lab.runtime.kill("web", 15);
    assert!(matches!(err, Err(ContainerError::NotRunning) | Err(ContainerError::Signal { .. })), "{err:?}");
    assert!(lab.xen.key(&runx_launch::keys::of_domain(state.domid, runx_launch::keys::SIGNAL)).is_none());
}

#[test]
fn xen_failing_at_any_step_of_create_leaves_nothing_and_the_id_free() {
    let calls = calls_of_a_create();
    for n in 0..calls {
        let lab = Lab::new(&format!("fault{n}"));
        lab.xen.fail_at(n);
        let err = lab.create("web").err().unwrap_or_else(|| panic!("create succeeded with Xen failing at call {n}"));
        assert!(err.to_string().contains(&format!("injected fault at call {n}")), "{err}");
        lab.assert_left(&[], 0, &format!("xen failing at call {n}"));
        lab.xen.clear_faults();
        lab.create("web").unwrap_or_else(|e| panic!("create after a fault at call {n}: {e}"));
        lab.runtime.delete("web", true).unwrap();
    }
}

#[test]
fn a_create_killed_at_any_step_is_cleaned_up_by_delete_force() {
    let kill = |lab: &Lab, at: &str, create: &dyn Fn() -> Result<ContainerState, ContainerError>| {
        match catch_unwind(AssertUnwindSafe(create)) {
            Err(payload) if payload.is::<Killed>() => {}
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(_) => panic!("create finished though it was killed {at}"),
        }
        lab.xen.clear_faults();
        lab.runtime.delete("web", true).unwrap_or_else(|e| panic!("delete --force after a kill {at}: {e}"));
        lab.assert_left(&[], 0, &format!("killed {at}"));
        lab.create("web").unwrap_or_else(|e| panic!("create after a kill {at}: {e}"));
        lab.runtime.delete("web", true).unwrap();
    };
    for n in 0..calls_of_a_create() {
        let lab = Lab::new(&format!("kill{n}"));
        lab.xen.kill_at(n);
        kill(&lab, &format!("at Xen call {n}"), &|| lab.create("web"));
    }
    for step in 0..steps_of_a_create() {
        let lab = Lab::new(&format!("killstep{step}"));
        let at_step = |n: usize| -> Option<i32> {
            if n == step {
                std::panic::resume_unwind(Box::new(Killed));
            }
            None
        };
        kill(&lab, &format!("at step {step}"), &|| lab.create_with("web", &at_step));
    }
}

/// How many steps (between which a signal is looked for) a create has.
fn steps_of_a_create() -> usize {
    let lab = Lab::new("steps");
    let steps = std::cell::Cell::new(0);
    lab.create_with("probe", &|n| {
        steps.set(n + 1);
        None
    })
    .unwrap();
    assert!(steps.get() >= 4, "create has only {} steps", steps.get());
    steps.get()
}

#[test]
fn a_stop_signal_at_any_step_of_create_rolls_it_back() {
    for step in 0..steps_of_a_create() {
        let lab = Lab::new(&format!("signal{step}"));
        match lab.create_with("web", &|n| (n == step).then_some(Signal::SIGTERM as i32)) {
            Ok(_) => panic!("create finished though SIGTERM came at step {step}"),
            Err(ContainerError::Interrupted { signal: 15, .. }) => {}
            Err(e) => panic!("a stop signal at step {step}: {e}"),
        }
        lab.assert_left(&[], 0, &format!("SIGTERM at step {step}"));
    }
}

#[test]
fn a_domain_left_by_a_failed_xl_create_is_removed() {
    let lab = Lab::new("halfbuilt");
    lab.xen.create_fails_after_building();
    let err = lab.create("web").unwrap_err().to_string();
    assert!(err.contains("unable to add disk devices"), "{err}");
    lab.assert_left(&[], 0, "after the failed create");
}

#[test]
fn a_running_containers_domain_is_counted_and_resized_within_its_maximum() {
    let lab = Lab::new("usage");
    let state = lab.create("web").unwrap();
    lab.runtime.start("web").unwrap();
    let stats = serde_json::to_value(lab.runtime.stats("web").unwrap()).unwrap();
    assert_eq!(stats["cpu"]["usage"]["total"], 2_000_000_000u64);
    assert_eq!(stats["memory"]["usage"]["usage"], 256u64 << 20);

    let resources = |json: &str| serde_json::from_str::<oci_spec::runtime::LinuxResources>(json).unwrap();
    lab.runtime
        .update("web", &resources(r#"{"memory":{"limit":134217728},"cpu":{"quota":100000,"period":100000}}"#))
        .unwrap();
    let domain = &lab.xen.domains()[&state.domid];
    assert_eq!((domain.usage.memory_kib, domain.usage.vcpus_online, domain.cap), (128 << 10, 1, Some(100)));
    let err = lab.runtime.update("web", &resources(r#"{"memory":{"limit":1073741824}}"#)).unwrap_err().to_string();
    assert!(err.contains("over the 256 MiB the domain was created with"), "{err}");
    assert_eq!(lab.xen.domains()[&state.domid].usage.memory_kib, 128 << 10, "a refused update changes nothing");

    lab.runtime.delete("web", true).unwrap();
    assert!(matches!(lab.runtime.stats("web"), Err(ContainerError::State(_))));
}

#[test]
fn a_domain_that_is_no_longer_runx_is_never_resized() {
    let lab = Lab::new("usage-recycled");
    let state = lab.create("web").unwrap();
    lab.xen.write(&runx_launch::keys::of_domain(state.domid, "vm"), "/vm/someone-else").unwrap();
    let resources = serde_json::from_str(r#"{"memory":{"limit":134217728}}"#).unwrap();
    assert!(lab.runtime.update("web", &resources).is_err());
    assert_eq!(lab.xen.domains()[&state.domid].usage.memory_kib, 256 << 10);
    assert!(matches!(lab.runtime.stats("web"), Err(ContainerError::NotRunning)));
}

#[test]
fn exec_runs_the_containers_process_with_runcs_flags_only_while_it_runs() {
    let lab = Lab::new("exec");
    lab.create("web").unwrap();
    let flags = ExecFlags {
        args: vec!["sh".into(), "-c".into(), "exit 3".into()],
        cwd: Some("/tmp".into()),
        env: vec!["FOO=bar".into()],
        user: Some((1000, Some(100))),
        ..ExecFlags::default()
    };
    let err = lab.runtime.exec_spec("web", None, &flags).unwrap_err().to_string();
    assert!(err.contains("it is created, and exec needs it running"), "{err}");
    lab.runtime.start("web").unwrap();
    let (state, json) = lab.runtime.exec_spec("web", None, &flags).unwrap();
    let spec = runx_launch::LaunchSpec::from_json(&json).unwrap();
    assert_eq!(spec.process.args, ["sh", "-c", "exit 3"]);
    assert_eq!(spec.process.cwd, "/tmp");
    assert_eq!((spec.process.user.uid, spec.process.user.gid), (1000, 100));
    assert!(spec.process.env.iter().any(|e| e == "FOO=bar"), "{:?}", spec.process.env);
    assert!(spec.process.env.iter().any(|e| e.starts_with("HOME=")), "{:?}", spec.process.env);
    assert!(!spec.wait_for_start);
    assert_eq!(state.id, "web");
    let none = ExecFlags::default();
    assert!(lab.runtime.exec_spec("web", None, &none).unwrap_err().to_string().contains("exec needs a process"));
    lab.runtime.delete("web", true).unwrap();
}
