//! Guests with runx-init as PID 1 and hand-made launch specs: the host side
//! builds runx-init (static), the runx guest kernel, a busybox container root,
//! one ramdisk (base + container archive) and xl config per test, and checks
//! what dom0 read back from xenstore and the guest's console.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use runx_image::guest::{self, cache::ArchiveCache, HostShare};
use runx_launch::{LaunchSpec, Mount, Process, Rlimit, Rootfs, RootfsMode, User, VERSION};
use runx_xl::{Action, DomainConfig, GuestType};

use super::cache::{Cache, Key};
use super::guest_kernel;
use super::payload::{Case, CaseResult, Need, Share};
use crate::arch::Arch;
use crate::cmd;

const LAB_BLOCK: &str = include_str!("assets/lab-block.sh");
const BARE_INIT: &str = include_str!("assets/bare-init.c");

/// runx-init's boot against a bare /init (see docs/benchmarks.md).
pub const BENCH: Case =
    Case::builtin("runx-init-boot", include_str!("assets/benches/runx-init-boot.sh"), 600).needing(&[Need::RunxGuests]);

pub const CASE: Case = Case::builtin("runx-init-guests", include_str!("assets/cases/runx-init-guests.sh"), 600)
    .needing(&[Need::RunxGuests])
    .checked_by(results);

/// What a test expects back.
pub struct Expect {
    pub exit_code: i32,
    pub exit_signal: Option<i32>,
    /// The guest's console, line by line (the kernel's closing "reboot: ..." line aside).
    pub console: &'static [&'static str],
    /// Text the error key must contain.
    pub error: Option<&'static str>,
}

pub struct GuestTest {
    pub name: &'static str,
    pub spec: LaunchSpec,
    /// A signal for dom0 to request once the process has started.
    pub signal: Option<i32>,
    /// `disk` mode: attach the rootfs image read-write (false: read-only).
    pub disk_rw: bool,
    pub expect: Expect,
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// A spec running `args` as root in `/` with PATH=/bin, initramfs mode.
pub fn spec(args: Vec<String>) -> LaunchSpec {
    LaunchSpec {
        version: VERSION,
        process: Process {
            args,
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: User { uid: 0, gid: 0, additional_gids: vec![], umask: None },
            rlimits: vec![],
            no_new_privileges: false,
            capabilities: None,
            terminal: false,
        },
        hostname: None,
        rootfs: Rootfs { mode: RootfsMode::Initramfs, device: None, fstype: None, readonly: false },
        mounts: Mount::defaults(),
        wait_for_start: false,
    }
}

fn on_disk(mut spec: LaunchSpec, readonly: bool) -> LaunchSpec {
    spec.rootfs = Rootfs {
        mode: RootfsMode::Disk,
        device: Some(runx_launch::ROOT_DEVICE.into()),
        fstype: Some("ext4".into()),
        readonly,
    };
    spec
}

fn expect(exit_code: i32, console: &'static [&'static str]) -> Expect {
    Expect { exit_code, exit_signal: None, console, error: None }
}

fn test(name: &'static str, spec: LaunchSpec, expect: Expect) -> GuestTest {
    GuestTest { name, spec, signal: None, disk_rw: false, expect }
}

/// Every runx-init test the lab runs.
pub fn tests() -> Vec<GuestTest> {
    let mut identity =
        spec(sh("echo \"id=$(id -u):$(id -g):$(id -G)\"; echo \"cwd=$(pwd)\"; echo \"host=$(hostname)\"; \
         echo \"greeting=$GREETING\"; echo \"umask=$(umask)\"; echo \"home=${HOME:-unset}\""));
    identity.process.env.push("GREETING=hello, world".into());
    identity.process.cwd = "/srv/data".into();
    identity.process.user = User { uid: 1000, gid: 1001, additional_gids: vec![1002, 1003], umask: Some(0o027) };
    identity.hostname = Some("runx-guest".into());

    let mut readonly =
        spec(sh("if touch /should-fail 2>/dev/null; then echo root-writable; exit 1; fi; echo root-read-only; \
         touch /tmp/ok && echo tmp-writable"));
    readonly.rootfs.readonly = true;
    readonly.mounts.push(Mount {
        destination: "/tmp".into(),
        fstype: "tmpfs".into(),
        source: "tmpfs".into(),
        options: vec!["nosuid".into(), "size=1m".into()],
    });

    let mut shares = spec(sh(
        "cat /etc/hosts /mnt/data/greeting; if (echo x >> /etc/hosts) 2>/dev/null; then echo hosts-writable; exit 1; fi; \
         echo hosts-read-only; echo new > /mnt/data/new && echo data-writable",
    ));
    for (name, destination, options) in [("hosts", "/etc/hosts", vec!["ro".to_owned()]), ("data", "/mnt/data", vec![])]
    {
        shares.mounts.push(Mount {
            destination: destination.into(),
            fstype: "bind".into(),
            source: format!("{}/{name}", runx_launch::SHARES_DIR),
            options,
        });
    }

    let mut rlimits = spec(sh("echo \"nofile=$(ulimit -n)\""));
    rlimits.process.rlimits.push(Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 64, hard: 64 });

    vec![
        test("exit-42", spec(sh("echo runx-exit-test; exit 42")), expect(42, &["runx-exit-test"])),
        test(
            "identity",
            identity,
            expect(
                0,
                &[
                    "id=1000:1001:1001 1002 1003",
                    "cwd=/srv/data",
                    "host=runx-guest",
                    "greeting=hello, world",
                    "umask=0027",
                    "home=unset",
                ],
            ),
        ),
        GuestTest {
            signal: Some(15),
            ..test(
                "sigterm-trap",
                spec(sh("trap 'echo got-TERM; exit 3' TERM; echo ready; while true; do sleep 1; done")),
                expect(3, &["ready", "got-TERM"]),
            )
        },
        GuestTest {
            signal: Some(15),
            ..test(
                "sigterm-default",
                spec(sh("echo ready; while true; do sleep 1; done")),
                Expect { exit_code: 143, exit_signal: Some(15), console: &["ready"], error: None },
            )
        },
        test(
            "missing-binary",
            spec(vec!["no-such-program".into()]),
            Expect {
                exit_code: 127,
                exit_signal: None,
                console: &["runx: exec: \"no-such-program\": executable file not found in $PATH"],
                error: Some("executable file not found in $PATH"),
            },
        ),
        test(
            "not-executable",
            spec(vec!["/etc/not-executable".into()]),
            Expect {
                exit_code: 126,
                exit_signal: None,
                console: &["runx: exec: \"/etc/not-executable\": permission denied"],
                error: Some("permission denied"),
            },
        ),
        test("read-only-root", readonly, expect(0, &["root-read-only", "tmp-writable"])),
        test(
            "no-zombies",
            spec(sh("i=0; while [ $i -lt 300 ]; do (: &); i=$((i + 1)); done; sleep 2; \
                 z=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l); echo zombies=$z; exit $z")),
            expect(0, &["zombies=0"]),
        ),
        test("rlimits", rlimits, expect(0, &["nofile=64"])),
        test(
            "bind-shares",
            shares,
            expect(0, &["10.0.0.1 runx-lab-host", "a shared folder", "hosts-read-only", "data-writable"]),
        ),
        GuestTest {
            disk_rw: true,
            ..test(
                "disk-root",
                on_disk(spec(sh("cat /etc/runx-test; touch /written && echo disk-writable")), false),
                expect(0, &["from-the-disk", "disk-writable"]),
            )
        },
        test(
            "disk-read-only",
            on_disk(
                spec(sh("cat /etc/runx-test; if touch /x 2>/dev/null; then exit 1; fi; echo disk-read-only")),
                true,
            ),
            expect(0, &["from-the-disk", "disk-read-only"]),
        ),
    ]
}

/// A small container root: busybox and its applets, the folders the tests use.
fn container_tree(cache: &Cache, busybox: &Path) -> Result<PathBuf> {
    let applets = ["sh", "echo", "cat", "id", "pwd", "hostname", "sleep", "touch", "grep", "wc", "ls", "true"];
    let mut key = Key::new("runx-test-root-v1");
    key.add(busybox.as_os_str().as_encoded_bytes()).add(applets.join(","));
    let dir = cache.get_or_build("runx-test-root", &key, |out| {
        let root = out.join("root");
        for dir in ["bin", "etc", "proc", "sys", "dev", "tmp", "srv/data"] {
            fs::create_dir_all(root.join(dir))?;
        }
        fs::copy(busybox, root.join("bin/busybox"))?;
        for applet in applets {
            symlink("busybox", root.join("bin").join(applet))?;
        }
        fs::write(root.join("etc/runx-test"), "from-the-disk\n")?;
        fs::write(root.join("etc/not-executable"), "#!/bin/sh\necho should not run\n")?;
        fs::set_permissions(root.join("etc/not-executable"), fs::Permissions::from_mode(0o644))?;
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        // The identity test's working folder belongs to its user.
        std::os::unix::fs::chown(root.join("srv/data"), Some(1000), Some(1001))?;
        Ok(())
    })?;
    Ok(dir.join("root"))
}

/// A guest on the runx kernel; dom0 finds its ramdisk at /host/runx/NAME.ramdisk.
fn guest_config(name: &str, on_poweroff: Action) -> DomainConfig {
    let mut cfg = DomainConfig::new(name, GuestType::Pv, "/host/runx/vmlinuz", 64, 1);
    cfg.ramdisk = Some(format!("/host/runx/{name}.ramdisk"));
    // loglevel=1: only emergencies reach the console the container's output uses.
    cfg.cmdline = Some("console=hvc0 quiet loglevel=1".into());
    cfg.on_poweroff = Some(on_poweroff);
    cfg.on_crash = Some(on_poweroff);
    cfg
}

fn xl_config(test: &GuestTest) -> Result<String> {
    let mut cfg = guest_config(test.name, Action::Preserve);
    if test.spec.rootfs.mode == RootfsMode::Disk {
        let (image, access) = if test.disk_rw { ("rootfs-rw.ext4", "rw") } else { ("rootfs-ro.ext4", "ro") };
        cfg.disks.push(format!(
            "format=raw, vdev={}, access={access}, script=/host/runx/lab-block, target=/host/runx/{image}",
            runx_launch::ROOT_DEVICE.trim_start_matches("/dev/")
        ));
    }
    Ok(cfg.render()?)
}

/// Puts the kernel, the per-test ramdisks and configs, and the test list into the share.
pub fn stage(cache: &Cache, share: &Share, busybox: &Path) -> Result<()> {
    let shipped = crate::shipped::build(Arch::X86_64)?;
    let kernel = guest_kernel::build(cache, Arch::X86_64)?;
    let tree = container_tree(cache, busybox)?;
    let dir = share.dir.join("runx");
    fs::create_dir_all(&dir)?;
    share.add_file("runx/vmlinuz", &kernel)?;
    fs::write(dir.join("lab-block"), LAB_BLOCK)?;
    fs::set_permissions(dir.join("lab-block"), fs::Permissions::from_mode(0o755))?;
    let base = dir.join("base.cpio");
    guest::write_base(shipped.init(), None, 0, fs::File::create(&base)?)?;
    for image in ["rootfs-rw.ext4", "rootfs-ro.ext4"] {
        guest::write_ext4(&tree, &dir.join(image), 8, 0)?;
    }
    // The initramfs-mode tests share one root: packed once, as the runtime packs an image once.
    let archives = ArchiveCache::new(cache.root().join("rootfs-archives"), 256 << 20);
    let rootfs = archives.rootfs_archive(&tree, 0)?;
    // Host files handed to guests whose specs bind them (as CRI hands /etc/hosts to containers).
    let share_dir = dir.join("shares");
    fs::create_dir_all(share_dir.join("data"))?;
    fs::write(share_dir.join("hosts"), "10.0.0.1 runx-lab-host\n")?;
    fs::write(share_dir.join("data/greeting"), "a shared folder\n")?;
    let shares = [
        HostShare { name: "hosts", host_path: &share_dir.join("hosts") },
        HostShare { name: "data", host_path: &share_dir.join("data") },
    ];
    let mut list = String::new();
    for test in tests() {
        let spec_archive = dir.join(format!("{}.spec.cpio.gz", test.name));
        let binds = test.spec.mounts.iter().any(|m| m.fstype == "bind");
        let shares: &[HostShare] = if binds { &shares } else { &[] };
        guest::write_spec(&test.spec, shares, 0, fs::File::create(&spec_archive)?)
            .with_context(|| format!("packing guest test {}", test.name))?;
        let mut parts = vec![base.as_path()];
        if test.spec.rootfs.mode == RootfsMode::Initramfs {
            parts.push(rootfs.path());
        }
        parts.push(&spec_archive);
        guest::concatenate(&parts, &dir.join(format!("{}.ramdisk", test.name)))?;
        fs::remove_file(&spec_archive)?;
        fs::write(dir.join(format!("{}.cfg", test.name)), xl_config(&test)?)?;
        let signal = test.signal.map_or("-".to_owned(), |s| s.to_string());
        list.push_str(&format!("{} {signal}\n", test.name));
    }
    fs::write(dir.join("tests"), list)?;
    stage_bench(&dir, &base, &tree)
}

/// The runx-init boot benchmark's two guests: a bare /init, and runx-init running the same program.
fn stage_bench(dir: &Path, base: &Path, tree: &Path) -> Result<()> {
    let source = dir.join("bare-init.c");
    fs::write(&source, BARE_INIT)?;
    let binary = dir.join("bare-init");
    cmd::output(Command::new("gcc").args(["-static", "-O2", "-o"]).arg(&binary).arg(&source))?;

    let mut bare = runx_image::cpio::CpioWriter::new(fs::File::create(dir.join("bench-bare.ramdisk"))?);
    let meta = runx_image::cpio::Meta::root(0o755, 0);
    bare.append_dir("dev", meta)?;
    bare.append_char_device("dev/console", runx_image::cpio::Meta::root(0o600, 0), 5, 1)?;
    bare.append_file("init", meta, &fs::read(&binary)?)?;
    bare.finish()?;
    fs::write(dir.join("bench-bare.cfg"), guest_config("bench-bare", Action::Destroy).render()?)?;

    // The container's root: the tests' busybox root plus the same program.
    let root = dir.join("bench-root");
    cmd::run(Command::new("cp").arg("-a").arg(tree).arg(&root))?;
    fs::copy(&binary, root.join("bin/hello"))?;
    let container = dir.join("bench-runx.container.cpio.gz");
    guest::write_container(&spec(vec!["/bin/hello".into()]), Some(&root), 0, fs::File::create(&container)?)?;
    guest::concatenate(&[base, &container], &dir.join("bench-runx.ramdisk"))?;
    fs::remove_file(&container)?;
    fs::remove_dir_all(&root)?;
    fs::write(dir.join("bench-runx.cfg"), guest_config("bench-runx", Action::Destroy).render()?)?;
    Ok(())
}

/// Checks one test against what dom0 left in the share; Err says what differed.
fn check(test: &GuestTest, share: &Share) -> std::result::Result<(), String> {
    let read = |key: &str| share.read(&format!("runx-results/{}.{key}", test.name)).trim().to_owned();
    let exit_code = read("exit-code");
    if exit_code != test.expect.exit_code.to_string() {
        return Err(format!("exit code {exit_code:?}, expected {}", test.expect.exit_code));
    }
    let signal = read("exit-signal");
    let expected_signal = test.expect.exit_signal.map(|s| s.to_string()).unwrap_or_default();
    if signal != expected_signal {
        return Err(format!("exit signal {signal:?}, expected {expected_signal:?}"));
    }
    let error = read("error");
    match test.expect.error {
        Some(text) if !error.contains(text) => return Err(format!("error {error:?} lacks {text:?}")),
        None if !error.is_empty() => return Err(format!("unexpected error {error:?}")),
        _ => {}
    }
    // Exactly the process's lines: no kernel or init chatter. The kernel's own last words
    // ("reboot: ...", printed at emergency level as the guest powers off) come after the process.
    let console = share.read(&format!("runx-results/{}.console", test.name));
    let lines: Vec<&str> = console.lines().map(str::trim_end).filter(|l| !l.starts_with("reboot: ")).collect();
    if lines != test.expect.console {
        return Err(format!("console said {lines:?}, expected exactly {:?}", test.expect.console));
    }
    Ok(())
}

/// One result per test, named `runx-init/NAME`.
pub fn results(share: &Share) -> Vec<CaseResult> {
    tests()
        .iter()
        .map(|test| {
            let outcome = check(test, share);
            let name = format!("runx-init/{}", test.name);
            CaseResult { name, passed: outcome.is_ok(), seconds: 0, detail: outcome.err() }
        })
        .collect()
}
