//! Booting Xen under QEMU (TCG): one function per machine, a serial log kept
//! as a file, a hard timeout, and QEMU killed whenever the run ends early.

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::dom0::Dom0;
use crate::arch::Arch;
use crate::progress::Step;

/// Xen's command line on x86_64 (arm64 boots take theirs from the qemu-arm64 board profile).
/// `spec-ctrl=eager-fpu`: on TCG's `max` CPU (vendor AMD) Xen would switch PV vCPUs' FPU state
/// lazily, restoring it on the #NM that CR0.TS raises; TCG's XSAVE, XSAVEOPT and XRSTOR ignore
/// CR0.TS, so a PV kernel saving or restoring a task's FPU state right after Xen switched vCPUs
/// works on another vCPU's registers, and user space in dom0 and the guests goes wrong under load.
const X86_XEN_CMDLINE: &str =
    "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M spec-ctrl=eager-fpu loglvl=all guest_loglvl=all";
const X86_DOM0_CMDLINE: &str = "console=hvc0 quiet";

/// Everything one boot needs.
pub struct Boot<'a> {
    pub dom0: &'a Dom0,
    /// Shared into dom0 at /host through 9p.
    pub share: &'a Path,
    /// A virtio disk, opened copy-on-write (the file is never changed): the x86_64 dom0
    /// rootfs, or the arm64 boot disk.
    pub disk: Option<&'a Path>,
    /// arm64 only: a TFTP folder that holds boot.scr.uimg and the images it loads.
    pub tftp: Option<&'a Path>,
    pub timeout: Duration,
    /// The serial log is written here.
    pub log: PathBuf,
}

/// A QEMU process that is killed if the lab stops waiting for it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn qemu_command(boot: &Boot<'_>) -> Command {
    let share = {
        let mut arg = OsString::from("local,path=");
        arg.push(boot.share);
        arg.push(",mount_tag=host,security_model=none,id=host0");
        arg
    };
    let mut cmd;
    match boot.dom0.arch {
        Arch::X86_64 => {
            cmd = Command::new("qemu-system-x86_64");
            // -smap: TCG's SMAP crashes a PV dom0; -rdtscp: PVH guests hang without it.
            cmd.args(["-machine", "q35", "-cpu", "max,-smap,-rdtscp", "-vga", "none"]);
            cmd.arg("-kernel").arg(&boot.dom0.xen);
            cmd.args(["-append", X86_XEN_CMDLINE]);
            // Multiboot modules: "kernel cmdline,initrd"; a comma inside is written ",,".
            let mut modules = OsString::new();
            modules.push(&boot.dom0.kernel);
            modules.push(format!(" {}", X86_DOM0_CMDLINE.replace(',', ",,")));
            modules.push(",");
            modules.push(&boot.dom0.initramfs);
            cmd.arg("-initrd").arg(modules);
        }
        Arch::Arm64 => {
            cmd = Command::new("qemu-system-aarch64");
            cmd.args(["-machine", "virt,virtualization=on,gic-version=3", "-cpu", "cortex-a57"]);
            cmd.args(["-bios", "/usr/lib/u-boot/qemu_arm64/u-boot.bin"]);
            if let Some(tftp) = boot.tftp {
                let mut net = OsString::from("user,id=n0,tftp=");
                net.push(tftp);
                cmd.arg("-netdev").arg(net).args(["-device", "virtio-net-pci,netdev=n0"]);
            }
        }
    }
    cmd.args(["-m", "2048", "-smp", "2", "-accel", "tcg", "-display", "none", "-no-reboot", "-monitor", "none"]);
    cmd.arg("-virtfs").arg(share);
    if let Some(disk) = boot.disk {
        let mut drive = OsString::from("file=");
        drive.push(disk);
        drive.push(",format=raw,if=virtio,snapshot=on");
        cmd.arg("-drive").arg(drive);
    }
    let mut serial = OsString::from("file:");
    serial.push(&boot.log);
    cmd.arg("-serial").arg(serial);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    // QEMU must not outlive the lab even when the lab itself is killed.
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    cmd
}

/// What a finished boot left behind.
pub struct Outcome {
    pub serial: String,
    pub took: Duration,
}

/// Boots and waits until QEMU exits (dom0 powers off) or the timeout passes.
/// Fails, showing the end of the serial log, on timeout, on a QEMU error, or
/// when dom0 never printed `done_marker`.
pub fn boot(boot: &Boot<'_>, what: &str, done_marker: &str) -> Result<Outcome> {
    let _ = fs::remove_file(&boot.log);
    let mut cmd = qemu_command(boot);
    let step = Step::start(what);
    let mut qemu = Running(cmd.spawn().context("cannot start QEMU: run scripts/prepare-host to install qemu-system")?);
    let deadline = Instant::now() + boot.timeout;
    let mut next_tick = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = qemu.0.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            drop(qemu);
            bail!("{what}: no power-off after {} s (timeout){}", boot.timeout.as_secs(), serial_tail(&boot.log));
        }
        if Instant::now() >= next_tick {
            step.tick();
            next_tick += Duration::from_secs(15);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = qemu.0.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    if !status.success() {
        bail!("{what}: QEMU failed ({status}): {}{}", stderr.trim(), serial_tail(&boot.log));
    }
    let serial = String::from_utf8_lossy(&fs::read(&boot.log).unwrap_or_default()).into_owned();
    if !serial.contains(done_marker) {
        let reasons: Vec<&str> = serial.lines().filter(|l| l.contains("@@lab: error:")).collect();
        bail!(
            "{what}: dom0 powered off without printing {done_marker:?}\n{}{}",
            reasons.join("\n"),
            serial_tail(&boot.log)
        );
    }
    let took = step.done();
    Ok(Outcome { serial, took })
}

/// The last lines of a serial log, for error messages.
pub fn serial_tail(log: &Path) -> String {
    let text = String::from_utf8_lossy(&fs::read(log).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    format!(
        "\n--- last {} lines of the serial log ---\n{tail}\n--- whole log: {} ---",
        lines.len().min(40),
        log.display()
    )
}
