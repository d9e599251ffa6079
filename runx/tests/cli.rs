//! The `runx` binary as containerd drives it, against a fake Xen (tests/fake-xen): a fake
//! xenstored that simulates domains and guests, and a fake `xl` on PATH. Each test's Xen and
//! runx run in a network namespace of the test's own, where the fake xl makes the guests' vifs
//! (veth pairs, so tests need root, as runx does).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::{json, Value};

struct FakeXen {
    dir: PathBuf,
    daemon: Child,
    /// The network namespace (`ip netns` name) the fake Xen and runx run in.
    netns: String,
}

impl Drop for FakeXen {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `command`, run in network namespace `netns`.
fn in_netns(mut command: Command, netns: &str) -> Command {
    let namespace = fs::File::open(format!("/run/netns/{netns}")).unwrap();
    // SAFETY: setns is async-signal-safe.
    unsafe {
        command.pre_exec(move || Ok(nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET)?));
    }
    command
}

fn subreaper() {
    static ONCE: Once = Once::new();
    // Like containerd's shim: the monitor outlives `runx create` and is reaped here.
    ONCE.call_once(|| nix::sys::prctl::set_child_subreaper(true).unwrap());
}

impl FakeXen {
    fn new(tag: &str) -> Self {
        subreaper();
        let dir = std::env::temp_dir().join(format!("runx-cli-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["bin", "state", "root", "bundles"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-xen/fake_xen.py");
        std::os::unix::fs::symlink(&script, dir.join("bin/xl")).unwrap();
        fs::write(dir.join("kernel"), b"fake guest kernel").unwrap();
        fs::write(dir.join("initramfs.cpio"), b"").unwrap();
        fs::write(
            dir.join("config.toml"),
            format!("kernel = \"{0}/kernel\"\ninitramfs = \"{0}/initramfs.cpio\"\nmemory_mib = 48\n", dir.display()),
        )
        .unwrap();
        let netns = format!("runx-cli-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &netns]).status();
        let made = Command::new("ip").args(["netns", "add", &netns]).status().unwrap();
        assert!(made.success(), "ip netns add {netns}: the CLI tests need root");
        let socket = dir.join("xenstored.sock");
        let mut daemon = in_netns(Command::new("python3"), &netns);
        let daemon = daemon.arg(&script).arg(&socket).arg(dir.join("state")).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the fake xenstored did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { dir, daemon, netns }
    }

    /// The identity of the test's network namespace, as /proc/PID/ns/net links name one.
    fn netns_link(&self) -> PathBuf {
        fs::read_link(format!("/proc/{}/ns/net", self.daemon.id())).unwrap()
    }

    fn runx(&self) -> Command {
        self.runx_at(&self.dir.join("root"))
    }

    /// runx with state root `root`.
    fn runx_at(&self, root: &Path) -> Command {
        let mut cmd = in_netns(Command::new(env!("CARGO_BIN_EXE_runx")), &self.netns);
        let path = format!("{}:{}", self.dir.join("bin").display(), std::env::var("PATH").unwrap_or_default());
        cmd.env("PATH", path)
            .env("XENSTORED_PATH", self.dir.join("xenstored.sock"))
            .env("FAKE_XEN_STATE", self.dir.join("state"))
            .env("RUNX_CONFIG", self.dir.join("config.toml"))
            .arg("--root")
            .arg(root)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.runx().args(args).output().unwrap()
    }

    /// A bundle whose process runs `args` (the fake guest's commands), with config.json
    /// fields from `extra` merged in.
    fn bundle(&self, name: &str, args: &[&str], extra: Value) -> PathBuf {
        let dir = self.dir.join("bundles").join(name);
        fs::create_dir_all(dir.join("rootfs/bin")).unwrap();
        fs::write(dir.join("rootfs/bin/app"), b"#!/bin/sh\n").unwrap();
        let mut config = json!({
            "ociVersion": "1.0.2",
            "root": { "path": "rootfs" },
            "process": { "args": args, "env": ["PATH=/bin"], "cwd": "/", "user": { "uid": 0, "gid": 0 } },
        });
        merge(&mut config, extra);
        fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
        dir
    }

    /// `runx create`, its stdout (the container's) going to a file. Returns the output of
    /// create and the file.
    fn create(&self, id: &str, bundle: &Path) -> (Output, PathBuf) {
        self.create_at(&self.dir.join("root"), id, bundle)
    }

    /// `create` under state root `root`.
    fn create_at(&self, root: &Path, id: &str, bundle: &Path) -> (Output, PathBuf) {
        let stdout = self.dir.join(format!("{id}.stdout"));
        let stderr = self.dir.join(format!("{id}.stderr"));
        let pid_file = self.dir.join(format!("{id}.pid"));
        let status = self
            .runx_at(root)
            .args(["--log-format", "json", "--log"])
            .arg(self.dir.join(format!("{id}.log")))
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(stderr).unwrap())
            .status()
            .unwrap();
        let log = fs::read_to_string(self.dir.join(format!("{id}.log"))).unwrap_or_default();
        (Output { status, stdout: Vec::new(), stderr: log.into_bytes() }, stdout)
    }

    fn pid(&self, id: &str) -> i32 {
        let text = fs::read_to_string(self.dir.join(format!("{id}.pid"))).unwrap();
        assert!(!text.ends_with('\n'), "the pid file has no newline");
        text.parse().unwrap()
    }

    fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn xl_log(&self) -> String {
        fs::read_to_string(self.dir.join("state/xl.log")).unwrap_or_default()
    }

    /// `xl ARGS` on the fake Xen, as an admin would run it.
    fn xl(&self, args: &[&str]) -> Output {
        let mut cmd = in_netns(Command::new(self.dir.join("bin/xl")), &self.netns);
        cmd.env("XENSTORED_PATH", self.dir.join("xenstored.sock")).args(args);
        cmd.output().unwrap()
    }

    /// The names of all domains.
    fn domains(&self) -> Vec<String> {
        let out = self.xl(&["list"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split(' ').next())
            .map(String::from)
            .collect()
    }

    /// Whether container `id` has a domain: runx names it `ROOT-TAG-ID`.
    fn domain_exists(&self, id: &str) -> bool {
        self.domains().iter().any(|name| name.ends_with(&format!("-{id}")))
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.join("root").join(id)
    }
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (k, v) in extra {
                merge(base.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Waits for the monitor like containerd's shim does, and returns its exit status; a monitor
/// still running after 30 s fails the test instead of hanging it.
fn wait_exit(pid: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).unwrap() {
            WaitStatus::Exited(_, code) => return code,
            WaitStatus::StillAlive if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("monitor {pid}: {other:?} after 30 s"),
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `msg` of the last error line of a JSON log, as containerd shows it.
fn last_error(log: &str) -> String {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .last()
        .map(|v| v["msg"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[test]
fn a_container_runs_prints_and_exits_through_its_lifecycle() {
    let xen = FakeXen::new("lifecycle");
    let bundle = xen.bundle("echo", &["echo", "hello", "world"], json!({}));
    let (out, stdout) = xen.create("c1", &bundle);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let pid = xen.pid("c1");
    let state = xen.state("c1");
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["id"], "c1");
    assert_eq!(state["bundle"], bundle.canonicalize().unwrap().to_str().unwrap());
    let mode = fs::metadata(xen.state_dir("c1")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o700);

    assert!(xen.run(&["start", "c1"]).status.success());
    assert_eq!(wait_exit(pid), 0);
    assert_eq!(fs::read_to_string(stdout).unwrap(), "hello world\n");
    assert_eq!(xen.state("c1")["status"], "stopped");
    assert!(!xen.domain_exists("c1"), "the monitor destroys the domain once it ended");

    let out = xen.run(&["delete", "c1"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(!xen.state_dir("c1").exists());
    let out = xen.run(&["state", "c1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container \\\"c1\\\" does not exist")
            || stderr(&out).contains("container \"c1\" does not exist")
    );
}

#[test]
fn a_created_container_runs_its_process_only_at_start() {
    let xen = FakeXen::new("boot-on-create");
    let bundle = xen.bundle("echo", &["echo", "started"], json!({}));
    let config = fs::read_to_string(xen.dir.join("config.toml")).unwrap();
    // boot_on_create: `xl create` lets the guest boot and `start` writes xenstore; without it the
    // domain is created paused and `start` unpauses it.
    for (boot_on_create, create, unpauses) in [(true, "create /", false), (false, "create -p /", true)] {
        fs::write(xen.dir.join("config.toml"), format!("{config}boot_on_create = {boot_on_create}\n")).unwrap();
        let id = format!("c-{boot_on_create}");
        let (out, stdout) = xen.create(&id, &bundle);
        assert!(out.status.success(), "create: {}", stderr(&out));
        assert!(xen.xl_log().contains(create), "boot_on_create = {boot_on_create}: {}", xen.xl_log());
        // Booted or not, the guest must not run the process before `start`.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(fs::read_to_string(&stdout).unwrap(), "");
        assert_eq!(xen.state(&id)["status"], "created");

        let pid = xen.pid(&id);
        assert!(xen.run(&["start", &id]).status.success());
        assert_eq!(wait_exit(pid), 0);
        assert_eq!(fs::read_to_string(&stdout).unwrap(), "started\n");
        assert_eq!(xen.xl_log().contains("unpause "), unpauses, "{}", xen.xl_log());
        assert!(xen.run(&["delete", &id]).status.success());
    }
}

/// `ctr run --cni` wires the network namespace of the pid `create` wrote: the monitor's, which
/// must therefore be the container's, never runx's own.
#[test]
fn the_monitor_lives_in_the_container_s_network_namespace() {
    let xen = FakeXen::new("netns");
    let ours = xen.netns_link();
    let namespaces = |network: Value| json!({ "linux": { "namespaces": [{ "type": "pid" }, network] } });
    let new = xen.bundle("new", &["echo"], namespaces(json!({ "type": "network" })));
    let (out, _) = xen.create("new", &new);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let pid = xen.pid("new");
    let monitor_ns = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(monitor_ns, ours, "a network namespace without a path is a new one");
    let links = Command::new("nsenter").arg(format!("--net=/proc/{pid}/ns/net")).args(["ip", "-o", "link"]).output();
    let links = String::from_utf8_lossy(&links.unwrap().stdout).into_owned();
    assert!(links.contains(": vif1.0@"), "create moved the guest's vif into the namespace: {links}");

    let given =
        xen.bundle("given", &["echo"], namespaces(json!({ "type": "network", "path": format!("/proc/{pid}/ns/net") })));
    let (out, _) = xen.create("given", &given);
    assert!(out.status.success(), "create: {}", stderr(&out));
    assert_eq!(
        fs::read_link(format!("/proc/{}/ns/net", xen.pid("given"))).unwrap(),
        monitor_ns,
        "the path's namespace"
    );

    let host = xen.bundle("host", &["echo"], json!({ "linux": { "namespaces": [{ "type": "pid" }] } }));
    let (out, _) = xen.create("host", &host);
    assert!(out.status.success(), "create: {}", stderr(&out));
    assert_eq!(fs::read_link(format!("/proc/{}/ns/net", xen.pid("host"))).unwrap(), ours, "none: runx's own");
    for id in ["new", "given", "host"] {
        assert!(xen.run(&["delete", "--force", id]).status.success(), "delete {id}");
    }
}

#[test]
fn exit_codes_and_signals_come_back_as_runc_reports_them() {
    let xen = FakeXen::new("exit");
    let (out, _) = xen.create("code", &xen.bundle("code", &["exit", "42"], json!({})));
    assert!(out.status.success(), "{}", stderr(&out));
    xen.run(&["start", "code"]);
    assert_eq!(wait_exit(xen.pid("code")), 42);

    let (_, stdout) = xen.create("term", &xen.bundle("term", &["wait"], json!({})));
    xen.run(&["start", "term"]);
    let out = xen.run(&["kill", "term", "15"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    assert_eq!(wait_exit(xen.pid("term")), 143);
    assert_eq!(fs::read_to_string(stdout).unwrap(), "signal 15\n");

    xen.create("sigkill", &xen.bundle("sigkill", &["wait"], json!({})));
    xen.run(&["start", "sigkill"]);
    assert!(xen.run(&["kill", "sigkill", "KILL"]).status.success());
    assert_eq!(wait_exit(xen.pid("sigkill")), 137);
    assert!(!xen.domain_exists("sigkill"));
    let out = xen.run(&["kill", "sigkill", "TERM"]);
    assert!(stderr(&out).contains("container not running"), "{}", stderr(&out));

    // A signal sent to the monitor's pid goes to the container's process too.
    xen.create("direct", &xen.bundle("direct", &["wait"], json!({})));
    xen.run(&["start", "direct"]);
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(Pid::from_raw(xen.pid("direct")), nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert_eq!(wait_exit(xen.pid("direct")), 128 + 10);

    xen.create("crash", &xen.bundle("crash", &["crash"], json!({})));
    xen.run(&["start", "crash"]);
    assert_eq!(wait_exit(xen.pid("crash")), 255);
    let monitor_stderr = fs::read_to_string(xen.dir.join("crash.stderr")).unwrap();
    assert!(monitor_stderr.contains("crashed before reporting an exit status"), "{monitor_stderr}");
    for id in ["code", "term", "sigkill", "direct", "crash"] {
        assert!(xen.run(&["delete", id]).status.success());
    }
}

#[test]
fn the_process_gets_exactly_what_config_json_says() {
    let xen = FakeXen::new("spec");
    let extra = json!({
        "hostname": "box",
        "process": { "env": ["PATH=/bin", "GREETING=hi there"], "cwd": "/tmp", "user": { "uid": 1000, "gid": 100 } },
        "linux": { "resources": { "memory": { "limit": 100663296 }, "cpu": { "quota": 200000, "period": 100000, "cpus": "1" } } },
    });
    let (out, stdout) = xen.create("env", &xen.bundle("env", &["env"], extra));
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = fs::read_to_string(xen.dir.join("state/last.cfg")).unwrap();
    for line in ["memory = 96", "vcpus = 2", "cap = 200", "cpus = \"1\"", "on_poweroff = \"preserve\""] {
        assert!(cfg.contains(line), "{line} missing from\n{cfg}");
    }
    xen.run(&["start", "env"]);
    assert_eq!(wait_exit(xen.pid("env")), 0);
    assert_eq!(
        fs::read_to_string(stdout).unwrap(),
        "PATH=/bin\nGREETING=hi there\nHOME=/\ncwd=/tmp\nuser=1000:100\nhostname=box\n",
        "HOME, as runc gives it: uid 1000 has no entry in the image's passwd"
    );
    xen.run(&["delete", "env"]);
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    let xen = FakeXen::new("bad");
    let check = |id: &str, bundle: &Path, wanted: &str| {
        let (out, _) = xen.create(id, bundle);
        assert!(!out.status.success(), "{id}: create should fail");
        let msg = last_error(&stderr(&out));
        assert!(msg.contains(wanted), "{id}: {msg:?} should contain {wanted:?}");
        assert!(!xen.state_dir(id).exists(), "{id}: state left behind");
        assert!(!xen.domain_exists(id), "{id}: domain left behind");
    };
    let corrupt = xen.bundle("corrupt", &["echo"], json!({}));
    fs::write(corrupt.join("config.json"), b"{\"ociVersion\": \"1.0.2\", \"process\": ").unwrap();
    check("corrupt", &corrupt, "config.json is not a valid OCI runtime config");
    let escape = xen.bundle("escape", &["echo"], json!({ "process": { "env": ["RUNX_KERNEL=/../../etc/passwd"] } }));
    check("escape", &escape, "leaves the container's rootfs");
    let link = xen.bundle("link", &["echo"], json!({ "annotations": { "io.runx.kernel": "/boot/k" } }));
    fs::create_dir_all(link.join("rootfs/boot")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", link.join("rootfs/boot/k")).unwrap();
    check("link", &link, "leaves the container's rootfs");
    let netns = |path: &str| json!({ "linux": { "namespaces": [{ "type": "network", "path": path }] } });
    check("netmnt", &xen.bundle("netmnt", &["echo"], netns("/proc/self/ns/mnt")), "is not a network namespace");
    check("nethost", &xen.bundle("nethost", &["echo"], netns("/proc/self/ns/net")), "is runx's own (the host's)");
    let raw = xen.bundle("raw", &["echo"], json!({ "annotations": { "io.runx.xl": "iomem = [\"0xff,1\"]" } }));
    check("raw", &raw, "annotation io.runx.xl is not one runx knows");
    fs::write(xen.dir.join("state/fail-create"), b"").unwrap();
    check("xlfail", &xen.bundle("xlfail", &["echo"], json!({})), "cannot allocate 64 MiB");
    fs::remove_file(xen.dir.join("state/fail-create")).unwrap();
    fs::write(xen.dir.join("config.toml"), format!("kernel = \"{}/missing\"\n", xen.dir.display())).unwrap();
    check(
        "nokernel",
        &xen.bundle("nokernel", &["echo"], json!({})),
        "missing does not exist: install runx's guest kernel",
    );

    for verb in
        [&["start", "nope"][..], &["kill", "nope", "9"], &["delete", "nope"], &["state", "nope"], &["pause", "nope"]]
    {
        let out = xen.run(verb);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("container \\\"nope\\\" does not exist"), "{verb:?}: {}", stderr(&out));
    }
    let out = xen.run(&["state", "../etc"]);
    assert!(stderr(&out).contains("may only contain"), "{}", stderr(&out));
    assert!(xen.run(&["delete", "--force", "nope"]).status.success(), "delete --force of nothing succeeds, as in runc");
}

#[test]
fn sigterm_asks_a_container_kernel_to_power_off() {
    let xen = FakeXen::new("kterm");
    let bundle = xen.bundle(
        "linux",
        &["console=hvc0", "wait=1"],
        json!({ "process": { "env": ["RUNX_KERNEL=/boot/bzImage"] } }),
    );
    fs::create_dir_all(bundle.join("rootfs/boot")).unwrap();
    fs::write(bundle.join("rootfs/boot/bzImage"), b"kernel").unwrap();
    let (out, _) = xen.create("linux", &bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    xen.run(&["start", "linux"]);
    let out = xen.run(&["kill", "linux", "USR1"]);
    assert!(stderr(&out).contains("signal 10 has no meaning for a container's own kernel"), "{}", stderr(&out));
    assert!(xen.run(&["kill", "linux", "TERM"]).status.success());
    assert_eq!(wait_exit(xen.pid("linux")), 0, "the kernel powered off");
    assert!(xen.run(&["delete", "linux"]).status.success());
}

#[test]
fn admin_profiles_and_vm_hw_config_shape_the_domain() {
    let xen = FakeXen::new("admin");
    let profiles = xen.dir.join("profiles");
    fs::create_dir_all(&profiles).unwrap();
    fs::write(profiles.join("rt.cfg"), "# core 1 for the control loop\ncpus = \"1\"\nmemory = 40\ncap = 50\n").unwrap();
    fs::write(profiles.join("ttc.cfg"), "iomem = [ \"0xff110,1\" ]\nirqs = [ 68, 69, 70 ]\n").unwrap();
    fs::write(profiles.join("raw.cfg"), "extra = \"init=/bin/sh\"\n").unwrap();
    let base = fs::read_to_string(xen.dir.join("config.toml")).unwrap();
    let allow = |extra: &str| {
        let text = format!(
            "{base}profiles_dir = \"{}\"\nallowed_profiles = [\"rt\", \"ttc\", \"raw\"]\n{extra}",
            profiles.display()
        );
        fs::write(xen.dir.join("config.toml"), text).unwrap();
    };
    allow("");

    let bundle = xen.bundle("rt", &["echo", "rt"], json!({ "annotations": { "io.runx.profile": "rt,ttc" } }));
    let (out, _) = xen.create("rt", &bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = fs::read_to_string(xen.dir.join("state/last.cfg")).unwrap();
    for line in ["cpus = \"1\"", "memory = 40\n", "cap = 50", "iomem = [ \"0xff110,1\" ]", "irqs = [ 68, 69, 70 ]"] {
        assert!(cfg.contains(line), "{line:?} not in {cfg}");
    }
    assert!(xen.run(&["delete", "rt"]).status.success());

    let hw = json!({ "vm": { "hwConfig": {
        "vcpus": 2, "memory": 50331648, "dtdevs": ["/amba/timer@ff110000"],
        "iomems": [{ "firstMFN": 1044752, "nrMFNs": 1 }], "irqs": [68] } } });
    let bundle = xen.bundle("hw", &["echo", "hw"], hw.clone());
    let (out, _) = xen.create("hw", &bundle);
    assert!(!out.status.success(), "devices from vm.hwConfig need the admin's yes");
    assert!(last_error(&stderr(&out)).contains("allow_vm_devices = true"), "{}", stderr(&out));
    assert!(!xen.state_dir("hw").exists() && !xen.domain_exists("hw"));
    allow("allow_vm_devices = true\n");
    let (out, _) = xen.create("hw", &bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = fs::read_to_string(xen.dir.join("state/last.cfg")).unwrap();
    for line in [
        "vcpus = 2",
        "memory = 48\n",
        "dtdev = [ \"/amba/timer@ff110000\" ]",
        "iomem = [ \"0xff110,0x1\" ]",
        "irqs = [ 68 ]",
    ] {
        assert!(cfg.contains(line), "{line:?} not in {cfg}");
    }
    assert!(xen.run(&["delete", "hw"]).status.success());

    let refused = |id: &str, extra: Value, wanted: &str| {
        let (out, _) = xen.create(id, &xen.bundle(id, &["echo"], extra));
        let msg = last_error(&stderr(&out));
        assert!(!out.status.success() && msg.contains(wanted), "{id}: {msg:?} should contain {wanted:?}");
        assert!(!xen.state_dir(id).exists() && !xen.domain_exists(id), "{id}: left something behind");
    };
    refused("unlisted", json!({ "annotations": { "io.runx.profile": "gpu" } }), "profile \"gpu\" is not allowed");
    refused("hostpath", json!({ "annotations": { "io.runx.profile": "../../etc/xen/dom0" } }), "is not valid");
    refused("rawxl", json!({ "annotations": { "io.runx.profile": "raw" } }), "extra is not a setting runx takes");
    refused(
        "vmimage",
        json!({ "vm": { "image": { "path": "/x.img", "format": "raw" } } }),
        "vm.image is not supported",
    );
    allow("allow_vm_config = false\n");
    refused("novm", hw, "which this host does not allow");
}

#[test]
fn running_containers_are_deleted_only_by_force_and_ids_are_taken_once() {
    let xen = FakeXen::new("delete");
    let bundle = xen.bundle("wait", &["wait"], json!({}));
    let (out, _) = xen.create("busy", &bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let (out, _) = xen.create("busy", &bundle);
    assert!(last_error(&stderr(&out)).contains("already exists"), "{}", stderr(&out));
    xen.run(&["start", "busy"]);
    assert!(xen.run(&["pause", "busy"]).status.success());
    assert_eq!(xen.state("busy")["status"], "paused");
    assert!(xen.run(&["resume", "busy"]).status.success());
    let out = xen.run(&["delete", "busy"]);
    assert!(stderr(&out).contains("cannot delete container busy that is not stopped: running"), "{}", stderr(&out));
    let list = xen.run(&["list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["id"], "busy");
    assert_eq!(list[0]["status"], "running");
    let ps: Value = serde_json::from_slice(&xen.run(&["ps", "--format", "json", "busy"]).stdout).unwrap();
    assert_eq!(ps, json!([xen.pid("busy")]));
    let pid = xen.pid("busy");
    assert!(xen.run(&["delete", "--force", "busy"]).status.success());
    assert_eq!(wait_exit(pid), 137);
    assert!(!xen.domain_exists("busy"));
    assert!(!xen.state_dir("busy").exists());
}

#[test]
fn a_container_may_bring_its_own_kernel() {
    let xen = FakeXen::new("kernel");
    let bundle = xen.bundle(
        "rtos",
        &["console=hvc0", "app=blink"],
        json!({ "process": { "env": ["RUNX_KERNEL=/boot/zephyr.elf"] } }),
    );
    fs::create_dir_all(bundle.join("rootfs/boot")).unwrap();
    fs::write(bundle.join("rootfs/boot/zephyr.elf"), b"elf").unwrap();
    let (out, stdout) = xen.create("rtos", &bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    // The domain boots a copy in the container's folder, which xl cannot be tricked into
    // opening somewhere else by a symlink planted in the image afterwards.
    let copy = xen.state_dir("rtos").join("kernel");
    let cfg = fs::read_to_string(xen.dir.join("state/last.cfg")).unwrap();
    assert!(cfg.contains(&format!("kernel = \"{}\"", copy.display())), "{cfg}");
    assert_eq!(fs::read(&copy).unwrap(), b"elf");
    assert!(cfg.contains("extra = \"console=hvc0 app=blink\""), "{cfg}");
    assert!(!cfg.contains("ramdisk"), "{cfg}");
    for action in ["on_poweroff", "on_reboot", "on_crash", "on_watchdog"] {
        assert!(cfg.contains(&format!("{action} = \"preserve\"")), "the monitor reads how it ended: {cfg}");
    }
    xen.run(&["start", "rtos"]);
    assert_eq!(wait_exit(xen.pid("rtos")), 0, "a poweroff is success");
    assert_eq!(fs::read_to_string(stdout).unwrap(), "console=hvc0 app=blink\n", "the kernel's console is stdout");
    xen.run(&["delete", "rtos"]);
}

#[test]
fn a_container_kernel_exit_status_says_how_its_domain_ended() {
    let xen = FakeXen::new("reasons");
    for (reason, status) in [("reboot", 1), ("watchdog", 2), ("crash", 255)] {
        let bundle = xen.bundle(
            reason,
            &["app=blink", &format!("shutdown={reason}")],
            json!({ "annotations": { "io.runx.kernel": "/boot/app.elf" } }),
        );
        fs::create_dir_all(bundle.join("rootfs/boot")).unwrap();
        fs::write(bundle.join("rootfs/boot/app.elf"), b"elf").unwrap();
        let (out, _) = xen.create(reason, &bundle);
        assert!(out.status.success(), "{}", stderr(&out));
        xen.run(&["start", reason]);
        assert_eq!(wait_exit(xen.pid(reason)), status, "{reason}");
        assert!(xen.run(&["delete", reason]).status.success());
        assert!(!xen.domain_exists(reason), "{reason}: the domain is destroyed");
    }
}

#[test]
fn ten_containers_at_once_all_run_and_clean_up() {
    let xen = FakeXen::new("ten");
    let bundle = xen.bundle("many", &["exit", "3"], json!({}));
    let ids: Vec<String> = (0..10).map(|i| format!("many{i}")).collect();
    std::thread::scope(|s| {
        for id in &ids {
            let (xen, bundle) = (&xen, &bundle);
            s.spawn(move || {
                let (out, _) = xen.create(id, bundle);
                assert!(out.status.success(), "{id}: {}", stderr(&out));
                assert!(xen.run(&["start", id]).status.success());
            });
        }
    });
    for id in &ids {
        assert_eq!(wait_exit(xen.pid(id)), 3, "{id}");
        assert!(xen.run(&["delete", id]).status.success());
        assert!(!xen.domain_exists(id));
    }
    assert_eq!(
        fs::read_dir(xen.dir.join("root"))
            .unwrap()
            .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count(),
        0
    );
}

#[test]
fn spec_and_features_describe_runx() {
    let xen = FakeXen::new("spec-features");
    let dir = xen.dir.join("newbundle");
    fs::create_dir_all(&dir).unwrap();
    assert!(xen.runx().args(["spec", "--bundle"]).arg(&dir).status().unwrap().success());
    let spec: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["annotations"]["io.runx.memory"], "48");
    assert_eq!(spec["annotations"]["io.runx.rootfs"], "initramfs");
    let again = xen.runx().args(["spec", "--bundle"]).arg(&dir).output().unwrap();
    assert!(stderr(&again).contains("exists. Remove it first"), "{}", stderr(&again));
    let features: Value = serde_json::from_slice(&xen.run(&["features"]).stdout).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert!(features["annotations"]["io.runx.annotations"].as_str().unwrap().contains("io.runx.kernel"));
    let exec = xen.run(&["exec", "nosuch", "true"]);
    assert!(!exec.status.success());
    assert!(stderr(&exec).contains("nosuch") && stderr(&exec).contains("does not exist"), "{}", stderr(&exec));
}

/// A domain of the admin's (`xl create` of a config of its own).
fn admin_domain(xen: &FakeXen, name: &str) {
    let cfg = xen.dir.join(format!("{name}.cfg"));
    fs::write(&cfg, format!("name = \"{name}\"\nkernel = \"{}\"\n", xen.dir.join("kernel").display())).unwrap();
    let out = xen.xl(&["create", "-p", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn runx_never_touches_a_domain_it_did_not_create() {
    let xen = FakeXen::new("others");
    let bundle = xen.bundle("wait", &["wait"], json!({}));
    // The same id under two state roots (two containerd namespaces) gets two domains.
    let (out, _) = xen.create("web", &bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    let other_root = xen.dir.join("root2");
    let (out, _) = xen.create_at(&other_root, "web", &bundle);
    assert!(out.status.success(), "the same id under another root: {}", stderr(&out));
    assert_eq!(xen.domains().len(), 2, "{:?}", xen.domains());
    let out = xen.runx_at(&other_root).args(["delete", "--force", "web"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(xen.domains().len(), 1, "deleting one leaves the other: {:?}", xen.domains());

    // An admin's VM with the very name runx would pick: create fails and the VM lives on.
    let name = xen.domains()[0].replace("-web", "-db");
    admin_domain(&xen, &name);
    let (out, _) = xen.create("db", &xen.bundle("db", &["echo"], json!({})));
    assert!(!out.status.success());
    assert!(last_error(&stderr(&out)).contains("already exists"), "{}", stderr(&out));
    assert!(xen.domains().contains(&name), "the admin's domain was destroyed: {:?}", xen.domains());
    assert!(!xen.state_dir("db").exists());

    // An all-digit id is not a domid: killing container 1 leaves domain 1 (the first one here).
    admin_domain(&xen, "admin-vm");
    let (out, _) = xen.create("1", &bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(xen.run(&["start", "1"]).status.success());
    assert!(xen.run(&["kill", "1", "KILL"]).status.success());
    assert_eq!(wait_exit(xen.pid("1")), 137);
    assert!(xen.domains().contains(&"admin-vm".to_owned()) && xen.domains().contains(&name), "{:?}", xen.domains());
    assert!(xen.run(&["delete", "--force", "web"]).status.success());
    assert!(xen.run(&["delete", "1"]).status.success());
}

/// `runx create` of `id` in the background, with `xl create` returning a while after the
/// domain exists.
fn slow_create(xen: &FakeXen, id: &str) -> Child {
    fs::write(xen.dir.join("state/slow-create"), b"2").unwrap();
    let bundle = xen.bundle(id, &["wait"], json!({}));
    let child = xen.runx().args(["create", "--bundle"]).arg(&bundle).arg(id).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !xen.domain_exists(id) {
        assert!(Instant::now() < deadline, "the domain of {id} did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::remove_file(xen.dir.join("state/slow-create")).unwrap();
    child
}

#[test]
fn a_killed_create_leaves_what_delete_cleans_up() {
    let xen = FakeXen::new("killed");
    let mut create = slow_create(&xen, "web");
    create.kill().unwrap();
    create.wait().unwrap();
    assert!(xen.domain_exists("web"));
    assert_eq!(xen.state("web")["status"], "stopped", "a create that died is over");
    let out = xen.run(&["create", "--bundle", "/nonexistent", "web"]);
    assert!(!out.status.success());
    let out = xen.run(&["delete", "--force", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!xen.domain_exists("web") && !xen.state_dir("web").exists());
    let (out, _) = xen.create("web", &xen.bundle("web", &["echo", "again"], json!({})));
    assert!(out.status.success(), "the id is free again: {}", stderr(&out));
    assert!(xen.run(&["delete", "--force", "web"]).status.success());
}

#[test]
fn sigterm_during_create_rolls_it_back() {
    let xen = FakeXen::new("sigterm");
    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGINT] {
        let create = slow_create(&xen, "web");
        nix::sys::signal::kill(Pid::from_raw(create.id() as i32), signal).unwrap();
        let out = create.wait_with_output().unwrap();
        assert!(!out.status.success(), "{signal}: create succeeded");
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(&format!("stopped by signal {}", signal as i32)), "{signal}: {message}");
        assert!(!xen.domain_exists("web"), "{signal}: domain left");
        assert!(!xen.state_dir("web").exists(), "{signal}: state left");
    }
}

#[test]
fn a_broken_host_config_does_not_keep_containers_from_being_removed() {
    let xen = FakeXen::new("badconfig");
    let (out, _) = xen.create("web", &xen.bundle("web", &["wait"], json!({})));
    assert!(out.status.success(), "{}", stderr(&out));
    let config = fs::read_to_string(xen.dir.join("config.toml")).unwrap();
    fs::write(xen.dir.join("config.toml"), format!("{config}vcpus = \"many\"\n")).unwrap();
    let out = xen.run(&["create", "--bundle", "/nonexistent", "db"]);
    assert!(stderr(&out).contains("is not valid"), "create needs a valid config: {}", stderr(&out));
    assert_eq!(xen.state("web")["status"], "created");
    assert!(xen.run(&["start", "web"]).status.success());
    let out = xen.run(&["kill", "web", "RTMIN+3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning"), "the broken config is named: {}", stderr(&out));
    assert_eq!(wait_exit(xen.pid("web")), 128 + 37, "SIGRTMIN+3 reaches the process");
    assert!(xen.run(&["delete", "web"]).status.success());
    assert!(!xen.state_dir("web").exists());
}

#[test]
fn state_list_and_version_behave_like_runc() {
    let xen = FakeXen::new("runc-like");
    let (out, _) = xen.create("web", &xen.bundle("web", &["wait"], json!({})));
    assert!(out.status.success(), "{}", stderr(&out));
    // A reader that goes away ends runx like runc, not with a panic.
    let mut state = xen.runx().args(["state", "web"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(state.stdout.take());
    let out = state.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
    // A container whose state cannot be read is named, not hidden.
    fs::create_dir(xen.dir.join("root/broken")).unwrap();
    let out = xen.run(&["list"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("container broken is not listed") && stderr(&out).contains("delete --force broken"),
        "{}",
        stderr(&out)
    );
    assert!(xen.run(&["delete", "--force", "broken"]).status.success());
    assert!(xen.run(&["delete", "--force", "web"]).status.success());
    let version = xen.run(&["--version"]);
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(version.starts_with("runx ") && version.contains("\nspec: 1."), "{version}");
}
