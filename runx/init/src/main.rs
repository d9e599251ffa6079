//! runx-init: PID 1 of a runx guest. It reads the launch spec, prepares the
//! container's root, runs exactly the process the spec describes, reaps
//! every orphan, forwards the signals the host asks for through xenstore,
//! and when the process ends reports how (xenstore `data/runx/...`), syncs
//! and powers the guest off. No shell, no agent.

mod capabilities;
mod exec;
mod network;
mod process;
mod setup;
mod terminal;
#[cfg(all(target_env = "musl", panic = "abort"))]
mod unwinder;
mod vcpus;

use std::os::fd::AsFd;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{sethostname, Pid};
use runx_launch::{keys, LaunchSpec, SPEC_PATH};

use runx_xenstore::Xenstore;
use terminal::{Pty, Relay};

/// Why the process could not run, and the exit code that reports it.
#[derive(Debug)]
pub struct Failure {
    pub exit_code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(exit_code: i32, message: String) -> Self {
        Self { exit_code, message }
    }

    /// runx-init could not prepare the guest (Docker's convention for "not the program's fault").
    pub fn setup(message: String) -> Self {
        Self::new(125, message)
    }

    /// A system call for `what` failed with `e`.
    pub fn sys(what: &str, e: Errno) -> Self {
        Self::setup(format!("{what}: {}", os_error(e)))
    }
}

/// The C library's words for `e`, as strerror has them. (nix's Display of an errno would link a
/// second copy of every message.)
pub fn os_error(e: Errno) -> String {
    let text = std::io::Error::from_raw_os_error(e as i32).to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

/// How the container's process ended.
enum Outcome {
    Exited(i32),
    Signaled(Signal),
    Failed(Failure),
}

fn refusal(pid: u32) -> Option<String> {
    (pid != 1).then(|| {
        format!("runx-init: running as pid {pid}: it is the PID 1 of a runx guest and is started by the guest kernel, not by hand")
    })
}

/// Sends the signal the host wrote to `data/runx/signal`, then clears the request.
fn forward_signal(store: &mut Xenstore, child: Pid) {
    let Ok(Some(value)) = store.read(keys::SIGNAL) else { return };
    if value.is_empty() {
        return;
    }
    match value.trim().parse::<i32>().ok().and_then(|n| Signal::try_from(n).ok()) {
        Some(signal) => {
            let _ = kill(child, signal);
        }
        None => eprintln!("runx-init: ignoring signal request {value:?}: not a signal number"),
    }
    let _ = store.remove(keys::SIGNAL);
}

/// Reaps every exited child, giving exec'd processes' statuses to their sessions; returns the
/// main process's status once it has ended.
fn reap(child: Pid, sessions: &mut exec::Sessions) -> Option<Outcome> {
    let mut outcome = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => outcome = Some(Outcome::Exited(code)),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => outcome = Some(Outcome::Signaled(signal)),
            Ok(WaitStatus::Exited(pid, code)) => sessions.reaped(pid, (code, 0)),
            Ok(WaitStatus::Signaled(pid, signal, _)) => sessions.reaped(pid, (128 + signal as i32, signal as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return outcome,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return outcome,
        }
    }
}

fn handle_event(store: &mut Xenstore, child: Pid, sessions: &mut exec::Sessions) {
    match store.next_event() {
        Ok(path) if path == keys::SIGNAL => forward_signal(store, child),
        Ok(path) if path.starts_with(vcpus::KEYS) => vcpus::follow(store, &path),
        Ok(path) => sessions.request(store, &path),
        Err(e) => eprintln!("runx-init: xenstore: {e}"),
    }
}

/// Waits for the main process, reaping orphans, forwarding signal requests, relaying the
/// process's terminal and running exec sessions meanwhile.
fn supervise(
    child: Pid,
    sigchld: &mut SignalFd,
    mut store: Option<&mut Xenstore>,
    mut relay: Option<Relay>,
    sessions: &mut exec::Sessions,
) -> Outcome {
    loop {
        if let Some(outcome) = reap(child, sessions) {
            if let Some(relay) = relay.as_mut() {
                relay.drain();
            }
            return outcome;
        }
        if let Some(store) = store.as_deref_mut() {
            while store.has_queued_events() {
                handle_event(store, child, sessions);
            }
            sessions.pump(store);
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sigchld.as_fd(), PollFlags::POLLIN)];
        if let Some(store) = store.as_deref() {
            fds.push(PollFd::new(store.fd(), PollFlags::POLLIN));
        }
        if let Some(relay) = relay.as_ref() {
            fds.push(PollFd::new(relay.master().as_fd(), relay.master_events()));
            let console = if relay.wants_console() { PollFlags::POLLIN } else { PollFlags::empty() };
            fds.push(PollFd::new(stdin.as_fd(), console));
        }
        let fixed = fds.len();
        fds.extend(sessions.poll_fds().into_iter().map(|(fd, events)| PollFd::new(fd, events)));
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => eprintln!("runx-init: poll: {}", os_error(e)),
        }
        let ready: Vec<PollFlags> = fds[..fixed].iter().map(|fd| fd.revents().unwrap_or(PollFlags::empty())).collect();
        drop(fds);
        if ready[0].contains(PollFlags::POLLIN) {
            let _ = sigchld.read_signal();
        }
        let mut next = 1;
        if let Some(store) = store.as_deref_mut() {
            if ready[next].contains(PollFlags::POLLIN) {
                handle_event(store, child, sessions);
            }
            next += 1;
        }
        if let Some(relay) = relay.as_mut() {
            relay.master_ready(ready[next]);
            if !ready[next + 1].is_empty() {
                relay.console_ready();
            }
        }
    }
}

/// The process's output must reach the host byte for byte: no `\n` -> `\r\n`, no echo of what
/// the host sends. A terminal container's line discipline is its pty's (`terminal`).
fn raw_console() {
    let stdin = std::io::stdin();
    match termios::tcgetattr(stdin.as_fd()) {
        Ok(mut attrs) => {
            termios::cfmakeraw(&mut attrs);
            if let Err(e) = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &attrs) {
                eprintln!("runx-init: cannot make the console raw: {}", os_error(e));
            }
        }
        Err(e) => eprintln!("runx-init: cannot read the console's settings: {}", os_error(e)),
    }
}

/// What the guest prepares before the process may run: the container's root, the signalfd
/// that reports the process's end, and a terminal container's pty.
struct Prepared {
    root: std::path::PathBuf,
    sigchld: SignalFd,
    pty: Option<Pty>,
}

fn prepare(spec: &LaunchSpec) -> Result<Prepared, Failure> {
    let root = setup::container_root(spec)?;
    if let Some(hostname) = &spec.hostname {
        sethostname(hostname).map_err(|e| Failure::sys(&format!("sethostname {hostname:?}"), e))?;
    }
    raw_console();
    let pty = if spec.process.terminal { Some(terminal::open_pty(&root)?) } else { None };
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGCHLD);
    let sigchld = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)
        .and_then(|()| SignalFd::with_flags(&blocked, SfdFlags::SFD_CLOEXEC))
        .map_err(|e| Failure::sys("signalfd", e))?;
    Ok(Prepared { root, sigchld, pty })
}

/// Blocks until the host's `start` writes `keys::START`.
fn wait_for_start(store: Option<&mut Xenstore>) -> Result<(), Failure> {
    let Some(store) = store else {
        return Err(Failure::setup(format!(
            "the host starts this container through xenstore ({}), which this guest cannot reach",
            keys::START
        )));
    };
    let failed = |e: std::io::Error| Failure::setup(format!("waiting for the host to write {}: {e}", keys::START));
    store.watch(keys::START, "start").map_err(failed)?;
    while store.read(keys::START).map_err(failed)?.is_none() {
        store.next_event().map_err(failed)?;
    }
    Ok(())
}

fn run(mut store: Option<&mut Xenstore>) -> Outcome {
    let spec = match std::fs::read(SPEC_PATH) {
        Ok(bytes) => match LaunchSpec::from_json(&bytes) {
            Ok(spec) => spec,
            Err(e) => return Outcome::Failed(Failure::setup(format!("{SPEC_PATH}: {e}"))),
        },
        Err(e) => return Outcome::Failed(Failure::setup(format!("cannot read {SPEC_PATH}: {e}"))),
    };
    // The guest prepares while the host's `create` returns; a failure is reported only after
    // `start`, as it would be had the guest booted then.
    let prepared = prepare(&spec);
    if spec.wait_for_start {
        if let Err(failure) = wait_for_start(store.as_deref_mut()) {
            return Outcome::Failed(failure);
        }
    }
    let Prepared { root, mut sigchld, pty } = match prepared {
        Ok(prepared) => prepared,
        Err(failure) => return Outcome::Failed(failure),
    };
    // After `start`: the host writes the network only once the engine has set it up.
    if let Err(failure) = network::configure(store.as_deref_mut()) {
        return Outcome::Failed(failure);
    }
    let stdio = match &pty {
        Some(pty) => process::Stdio::Terminal(&pty.slave),
        None => process::Stdio::Console,
    };
    let (child, failure) = match process::spawn(&spec.process, &root, &stdio) {
        Ok(spawned) => spawned,
        Err(failure) => return Outcome::Failed(failure),
    };
    let relay = pty.map(Relay::new);
    if let Some(store) = store.as_deref_mut() {
        if failure.is_none() {
            let _ = store.write(keys::STARTED, "1");
        }
        if let Err(e) = store.watch(keys::SIGNAL, "signal") {
            eprintln!("runx-init: cannot watch {}: {e}: signals from the host will not arrive", keys::SIGNAL);
        }
        if let Err(e) = store.watch(vcpus::KEYS, "vcpus") {
            eprintln!("runx-init: cannot watch {}: {e}: vcpus the host brings online stay offline", vcpus::KEYS);
        }
        if let Err(e) = store.watch(runx_launch::exec::REQUESTS, "exec") {
            eprintln!(
                "runx-init: cannot watch {}: {e}: runx exec will not reach this guest",
                runx_launch::exec::REQUESTS
            );
        }
    }
    let mut sessions = exec::Sessions::new(&root);
    let outcome = supervise(child, &mut sigchld, store, relay, &mut sessions);
    match (failure, outcome) {
        (Some(failure), _) => Outcome::Failed(failure),
        (None, outcome) => outcome,
    }
}

/// Stops every other process, records the outcome for the host, syncs and powers off.
fn finish(outcome: Outcome, store: Option<&mut Xenstore>) -> ! {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while !matches!(waitpid(None, None), Err(Errno::ECHILD)) {}
    let (code, signal) = match &outcome {
        Outcome::Exited(code) => (*code, None),
        Outcome::Signaled(signal) => (128 + *signal as i32, Some(*signal as i32)),
        Outcome::Failed(failure) => {
            eprintln!("runx: {}", failure.message);
            (failure.exit_code, None)
        }
    };
    if let Some(store) = store {
        if let Outcome::Failed(failure) = &outcome {
            let _ = store.write(keys::ERROR, &failure.message);
        }
        if let Some(signal) = signal {
            let _ = store.write(keys::EXIT_SIGNAL, &signal.to_string());
        }
        if let Err(e) = store.write(keys::EXIT_CODE, &code.to_string()) {
            eprintln!("runx-init: cannot report exit code {code} through xenstore: {e}");
        }
    }
    nix::unistd::sync();
    // The kernel's "reboot: ..." line is an emergency message, which loglevel=1 still prints on
    // the console the container's output uses. Console level 0 silences every level.
    let _ = std::fs::write("/proc/sys/kernel/printk", "0");
    let _ = reboot(RebootMode::RB_POWER_OFF);
    // reboot only returns on error; PID 1 must never exit.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("runx-init {} (launch spec version {})", env!("CARGO_PKG_VERSION"), runx_launch::VERSION);
        return ExitCode::SUCCESS;
    }
    if let Some(msg) = refusal(std::process::id()) {
        eprintln!("{msg}");
        return ExitCode::from(2);
    }
    if let Err(failure) = setup::kernel_filesystems() {
        finish(Outcome::Failed(failure), None);
    }
    let mut store = match Xenstore::open() {
        Ok(store) => Some(store),
        Err(e) => {
            eprintln!("runx-init: cannot open /dev/xen/xenbus ({e}): the exit code cannot reach the host");
            None
        }
    };
    let outcome = run(store.as_mut());
    finish(outcome, store.as_mut())
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn refuses_to_run_outside_a_guest() {
        let msg = refusal(4242).expect("pid 4242 must be refused");
        assert!(msg.contains("pid 4242") && msg.contains("PID 1"), "{msg}");
        assert_eq!(refusal(1), None);
    }
}
