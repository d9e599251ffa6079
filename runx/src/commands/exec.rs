use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Process};
use runx::container::ExecFlags;
use runx::exec::{self, ExecError};
use runx::xen::{Domain, Xl};

use super::{terminal, Global};

/// runc's flags. The process runs in the guest, in the container's root; runx exec (or, with
/// --detach, the relay it leaves running) stands for it in dom0 and ends with its status.
#[derive(clap::Args)]
pub struct Args {
    /// The process as runtime-spec JSON (process.json), instead of the container's own process
    /// with ARGS.
    #[arg(long, short)]
    process: Option<PathBuf>,
    /// Give the process a terminal: a pty in the guest, relayed to a pty whose master goes to
    /// --console-socket (or to runx exec's own terminal).
    #[arg(long, short)]
    tty: bool,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Leave a relay running for the process and return once it has started.
    #[arg(long, short)]
    detach: bool,
    /// Where to write the pid that stands for the process (the relay's).
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<String>,
    /// NAME=value, added to the container's environment.
    #[arg(long, short)]
    env: Vec<String>,
    /// UID[:GID].
    #[arg(long, short)]
    user: Option<String>,
    #[arg(long, short = 'g')]
    additional_gids: Vec<u32>,
    /// A capability to add (e.g. CAP_NET_ADMIN).
    #[arg(long, short)]
    cap: Vec<String>,
    #[arg(long)]
    no_new_privs: bool,
    /// Accepted for runc compatibility: a guest has no AppArmor, SELinux or cgroups of the host.
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long)]
    process_label: Option<String>,
    #[arg(long)]
    cgroup: Option<String>,
    /// Accepted for runc compatibility; no host descriptors reach a guest.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// The relay `exec --detach` leaves running: the session's dom0 end.
#[derive(clap::Args)]
pub struct RelayArgs {
    #[arg(long)]
    domid: u32,
    #[arg(long)]
    uuid: String,
    /// The launch spec of the process, as a file the relay removes once read.
    #[arg(long)]
    spec: PathBuf,
    /// Where the relay writes "ok", or the exit code and why the process did not start.
    #[arg(long)]
    ready_fd: i32,
    #[arg(long)]
    tty: bool,
}

pub fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let runtime = global.cleanup_runtime()?;
    let process = match &args.process {
        Some(path) => Some(read_process(path)?),
        None => None,
    };
    let flags = flags(&args)?;
    let (state, spec) = runtime.exec_spec(&args.id, process, &flags)?;
    let tty = match &args.process {
        Some(_) => serde_json::from_slice::<serde_json::Value>(&spec)?["process"]["terminal"] == true,
        None => args.tty,
    };
    let pty = match (&args.console_socket, tty) {
        (Some(socket), true) => Some(terminal::send_terminal(socket)?),
        (None, true) if args.detach => bail!("exec --tty --detach needs --console-socket to send the terminal to"),
        _ => None,
    };
    if args.detach {
        return detach(&args, state.domid, &state.uuid, &spec, pty, tty);
    }
    if let Some(path) = &args.pid_file {
        write_pid(path, std::process::id())?;
    }
    let domain = Domain { domid: state.domid, uuid: &state.uuid };
    let xen = Xl::default();
    Ok(exit_code(session(&xen, domain, &spec, tty, None)))
}

/// The relay: runs the session with the stdio runx exec gave it.
pub fn relay(args: RelayArgs) -> Result<ExitCode> {
    // SAFETY: runx exec passed this descriptor to us open, and nothing else here uses it.
    let ready = unsafe { OwnedFd::from_raw_fd(args.ready_fd) };
    let spec = fs::read(&args.spec).with_context(|| format!("cannot read {}", args.spec.display()))?;
    let _ = fs::remove_file(&args.spec);
    let domain = Domain { domid: args.domid, uuid: &args.uuid };
    Ok(exit_code(session(&Xl::default(), domain, &spec, args.tty, Some(ready))))
}

/// Opens the session, starts the process, tells `ready` (when detached), relays until the
/// process ends, and removes the request. Ok(exit code), or why it could not start.
fn session(xen: &Xl, domain: Domain<'_>, spec: &[u8], tty: bool, ready: Option<OwnedFd>) -> Result<i32, ExecError> {
    let id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    let started = exec::open(xen, domain, &id).and_then(|mut session| session.start(spec).map(|()| session));
    let report = |text: &[u8]| {
        if let Some(fd) = &ready {
            let _ = nix::unistd::write(fd, text);
        }
    };
    let mut session = match started {
        Ok(session) => session,
        Err(e) => {
            let code = match &e {
                ExecError::Failed { exit_code, .. } => *exit_code,
                _ => 255,
            };
            report(format!("{code} {e}").as_bytes());
            exec::close(xen, domain, &id);
            return Err(e);
        }
    };
    report(b"ok");
    drop(ready);
    let status = exec::relay(xen, domain, &mut session, tty).map_err(ExecError::Channel);
    exec::close(xen, domain, &id);
    status
}

fn exit_code(status: Result<i32, ExecError>) -> ExitCode {
    match status {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("runx: exec failed: {e}");
            ExitCode::from(match e {
                ExecError::Failed { exit_code, .. } => exit_code.clamp(1, 255) as u8,
                _ => 255,
            })
        }
    }
}

/// Starts the relay with runx exec's stdio (or the terminal's slave), waits until the process
/// runs, writes the relay's pid and returns.
fn detach(args: &Args, domid: u32, uuid: &str, spec: &[u8], pty: Option<OwnedFd>, tty: bool) -> Result<ExitCode> {
    let spec_file = std::env::temp_dir().join(format!("runx-exec-{}.json", std::process::id()));
    fs::write(&spec_file, spec).with_context(|| format!("cannot write {}", spec_file.display()))?;
    let (ready_read, ready_write) = nix::unistd::pipe()?;
    let mut command = Command::new("/proc/self/exe");
    command.args(["exec-relay", "--domid", &domid.to_string(), "--uuid", uuid]);
    command.arg("--spec").arg(&spec_file).args(["--ready-fd", &ready_write.as_raw_fd().to_string()]);
    if tty {
        command.arg("--tty");
    }
    if let Some(pty) = &pty {
        command.stdin(Stdio::from(pty.try_clone()?)).stdout(Stdio::from(pty.try_clone()?));
        command.stderr(Stdio::from(pty.try_clone()?));
    }
    let ready_fd = ready_write.as_raw_fd();
    let controlling = pty.is_some();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            // The pty becomes the relay's controlling terminal: its resizes arrive as SIGWINCH.
            if controlling && nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            nix::fcntl::fcntl(ready_fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
            Ok(())
        });
    }
    let child = command.spawn().context("cannot start the exec relay")?;
    drop(ready_write);
    let mut answer = String::new();
    fs::File::from(ready_read).read_to_string(&mut answer)?;
    if answer != "ok" {
        let _ = fs::remove_file(&spec_file);
        // As an error of runx exec itself, so that it reaches --log, where containerd reads it.
        let why = answer.split_once(' ').map_or("the exec relay ended without starting the process", |(_, why)| why);
        bail!("exec failed: {why}");
    }
    if let Some(path) = &args.pid_file {
        write_pid(path, child.id())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Written whole or not at all, as the pid file of create is.
fn write_pid(path: &PathBuf, pid: u32) -> Result<()> {
    let tmp = path.with_extension("runx-tmp");
    let mut file = fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(pid.to_string().as_bytes())?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn read_process(path: &PathBuf) -> Result<Process> {
    let text = fs::read(path).with_context(|| format!("cannot read the process file {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{}: not a runtime-spec process", path.display()))
}

fn flags(args: &Args) -> Result<ExecFlags> {
    let user = match &args.user {
        Some(text) => {
            let (uid, gid) = match text.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (text.as_str(), None),
            };
            let number = |v: &str| v.parse::<u32>().with_context(|| format!("--user {text:?}: use UID[:GID], numbers"));
            Some((number(uid)?, gid.map(number).transpose()?))
        }
        None => None,
    };
    let caps = args
        .cap
        .iter()
        .map(|c| {
            c.parse::<Capability>().map_err(|_| anyhow::anyhow!("--cap {c:?}: not a capability (e.g. CAP_NET_ADMIN)"))
        })
        .collect::<Result<_>>()?;
    Ok(ExecFlags {
        args: args.args.clone(),
        tty: args.tty,
        cwd: args.cwd.clone(),
        env: args.env.clone(),
        user,
        additional_gids: args.additional_gids.clone(),
        no_new_privs: args.no_new_privs,
        caps,
    })
}
