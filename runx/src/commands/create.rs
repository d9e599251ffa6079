use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use super::{terminal, Global};
use runx::container::CreateOptions;
use runx::log::Log;
use runx::monitor::Guest;
use runx::network::NetworkNamespace;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle folder: config.json and the rootfs it names.
    #[arg(long, short, default_value = ".")]
    bundle: PathBuf,
    /// Write the pid containerd waits for (the monitor's) here: decimal, no newline.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (`process.terminal`).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility; a guest has its own root.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility; a guest has its own keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Accepted for runc compatibility; no host descriptors reach a guest.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

pub fn run(args: Args, global: &Global, log: &mut Log) -> Result<()> {
    let runtime = global.runtime()?;
    let terminal = match &args.console_socket {
        Some(socket) => Some(terminal::send_terminal(socket)?),
        None => None,
    };
    let spawn = |guest: &Guest<'_>, network: &NetworkNamespace, ready: OwnedFd| {
        spawn_monitor(guest, network, ready, terminal.as_ref())
    };
    // SIGTERM, SIGINT and SIGHUP (containerd's shim giving up, a user's ^C) are held until the
    // next step of create, which then removes what it made: a signal between two steps would
    // otherwise leave a domain behind.
    let stop_signals = stop_signals();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stop_signals), None)
        .context("cannot hold the stop signals during create")?;
    let interrupted = || pending(&stop_signals);
    log.debug(&format!("creating {} from {}", args.id, args.bundle.display()));
    let options = CreateOptions { spawn_monitor: &spawn, interrupted: &interrupted };
    let state = runtime.create(&args.id, &args.bundle, &options)?;
    if let Some(path) = &args.pid_file {
        if let Err(e) = runx::state::write_atomically(path, state.pid.to_string().as_bytes()) {
            let _ = runtime.delete(&args.id, true);
            return Err(e).with_context(|| format!("cannot write the pid file {}", path.display()));
        }
    }
    Ok(())
}

fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

/// The first of `signals` that is pending, if any.
fn pending(signals: &SigSet) -> Option<i32> {
    let mut set = std::mem::MaybeUninit::<nix::libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is given.
    if unsafe { nix::libc::sigpending(set.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by sigpending above.
    let set = unsafe { SigSet::from_sigset_t_unchecked(set.assume_init()) };
    signals.iter().find(|s| set.contains(*s)).map(|s| s as i32)
}

/// Starts the monitor in the container's network namespace: a new one, the engine's, or (none
/// in config.json) runx's own.
fn spawn_monitor(
    guest: &Guest<'_>,
    network: &NetworkNamespace,
    ready: OwnedFd,
    terminal: Option<&OwnedFd>,
) -> std::io::Result<i32> {
    let join = network.open().map_err(std::io::Error::other)?;
    let new_namespace = *network == NetworkNamespace::New;
    let mut command = Command::new("/proc/self/exe");
    command.args(["monitor", "--domid", &guest.domid.to_string(), "--uuid", guest.uuid]);
    command.args(["--guest", guest.kind.as_str()]);
    command.args(["--ready-fd", &ready.as_raw_fd().to_string()]);
    command.arg("--").arg(guest.name);
    if let Some(tty) = terminal {
        command.stdin(Stdio::from(tty.try_clone()?)).stdout(Stdio::from(tty.try_clone()?));
        command.stderr(Stdio::from(tty.try_clone()?));
    }
    let ready_fd = ready.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            if let Some(namespace) = &join {
                nix::sched::setns(namespace, CloneFlags::CLONE_NEWNET)?;
            }
            if new_namespace {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
            }
            nix::fcntl::fcntl(ready_fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(ready);
    Ok(child.id() as i32)
}
