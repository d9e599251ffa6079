//! The monitor: the process whose pid containerd gets. It relays the guest's console to its
//! stdio, forwards the signals it receives to the container's process, and when the guest
//! ends reads how the process ended, destroys the domain and exits with that status
//! (128+N after signal N), as runc's container process would.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::{self, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::termios;
use runx_launch::keys;

use crate::guest_kind::GuestKind;
use crate::xen::{Domain, DomainState, Shutdown, Watch, Xen};

/// Exit status when the guest ended without saying how the process did (it crashed, or its
/// kernel panicked).
pub const GUEST_FAILED: i32 = 255;

/// How long the console may stay silent after the guest stopped before the monitor stops
/// reading it: xenconsoled may still be copying the last output.
const DRAIN_QUIET: Duration = Duration::from_millis(150);
const CONSOLE_WAIT: Duration = Duration::from_secs(20);
/// How long the monitor waits for xenconsoled to empty the console ring of a guest that ended.
const RING_WAIT: Duration = Duration::from_secs(10);
/// Once the guest reported an exit status, how often the monitor looks whether it is down.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Signals sent to the monitor that go to the container's process instead.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGPWR,
];

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("xenstore: {0}")]
    Xenstore(io::Error),
    #[error(
        "the console of domain {domid} did not appear in xenstore within {CONSOLE_WAIT:?}: is xenconsoled running?"
    )]
    NoConsole { domid: u32 },
    #[error("cannot open the guest console {path}: {source}")]
    Console { path: String, source: nix::Error },
    #[error("{0}")]
    System(String),
}

/// What the monitor is watching.
pub struct Guest<'a> {
    /// The domain's name, for messages.
    pub name: &'a str,
    pub domid: u32,
    pub uuid: &'a str,
    pub kind: GuestKind,
}

impl Guest<'_> {
    fn domain(&self) -> Domain<'_> {
        Domain { domid: self.domid, uuid: self.uuid }
    }
}

/// Prepares the relay (console opened, watches set), reports readiness through `ready` ("ok",
/// or why not), then runs until the guest ends and returns the exit status.
pub fn run(xen: &dyn Xen, guest: &Guest<'_>, ready: OwnedFd) -> Result<i32, MonitorError> {
    let mut ready = std::fs::File::from(ready);
    let relay = match Relay::prepare(xen, guest) {
        Ok(relay) => relay,
        Err(e) => {
            let _ = ready.write_all(e.to_string().as_bytes());
            return Err(e);
        }
    };
    let _ = ready.write_all(b"ok");
    drop(ready);
    relay.run()
}

fn open_console(store: &mut dyn Watch, domid: u32) -> Result<OwnedFd, MonitorError> {
    let key = keys::of_domain(domid, "console/tty");
    let deadline = Instant::now() + CONSOLE_WAIT;
    let mut watching = false;
    let path = loop {
        if let Some(path) = store.read(&key).map_err(MonitorError::Xenstore)?.filter(|p| !p.is_empty()) {
            break path;
        }
        if !watching {
            store.watch(&key, "console").map_err(MonitorError::Xenstore)?;
            watching = true;
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !readable(store.fd(), left).map_err(|e| MonitorError::System(e.to_string()))? {
            return Err(MonitorError::NoConsole { domid });
        }
        store.next_event().map_err(MonitorError::Xenstore)?;
    };
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let raw = fcntl::open(path.as_str(), flags, Mode::empty())
        .map_err(|source| MonitorError::Console { path: path.clone(), source })?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    if let Ok(mut attrs) = termios::tcgetattr(&fd) {
        termios::cfmakeraw(&mut attrs);
        let _ = termios::tcsetattr(&fd, termios::SetArg::TCSANOW, &attrs);
    }
    Ok(fd)
}

fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> nix::Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
    Ok(poll(&mut fds, ms)? > 0)
}

fn forwarded_signals() -> Result<SignalFd, MonitorError> {
    let mut set = SigSet::empty();
    for &signal in FORWARDED {
        set.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .and_then(|()| SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK))
        .map_err(|e| MonitorError::System(format!("signalfd: {e}")))
}

struct Relay<'a> {
    store: Box<dyn Watch>,
    console: OwnedFd,
    signals: SignalFd,
    /// False once xenconsoled closed the console (the domain is being destroyed).
    console_open: bool,
    stdin_open: bool,
    /// The guest wrote its exit status: it is powering off. xenstored announces the shutdown
    /// through `@releaseDomain`, but the monitor also looks every SHUTDOWN_POLL from then on.
    reported: bool,
    xen: &'a dyn Xen,
    guest: &'a Guest<'a>,
}

enum Ended {
    /// Shut down or crashed, and kept: its xenstore keys can still be read.
    Kept(DomainState),
    /// Destroyed (`runx kill ... KILL`, `runx delete --force`).
    Gone,
}

impl<'a> Relay<'a> {
    fn prepare(xen: &'a dyn Xen, guest: &'a Guest<'a>) -> Result<Self, MonitorError> {
        let mut store = xen.watcher().map_err(MonitorError::Xenstore)?;
        let console = open_console(store.as_mut(), guest.domid)?;
        store.watch("@releaseDomain", "release").map_err(MonitorError::Xenstore)?;
        let exit_key = keys::of_domain(guest.domid, keys::EXIT_CODE);
        store.watch(&exit_key, "exit").map_err(MonitorError::Xenstore)?;
        let signals = forwarded_signals()?;
        Ok(Relay { store, console, signals, console_open: true, stdin_open: true, reported: false, xen, guest })
    }

    fn run(mut self) -> Result<i32, MonitorError> {
        let ended = loop {
            if let Some(ended) = self.step()? {
                break ended;
            }
        };
        if matches!(ended, Ended::Kept(_)) {
            self.wait_ring_emptied();
        }
        self.drain_console();
        let status = match ended {
            Ended::Gone => 128 + Signal::SIGKILL as i32,
            Ended::Kept(state) => {
                let status = self.exit_status(state);
                if let Err(e) = self.xen.destroy(self.guest.domain()) {
                    eprintln!("runx: cannot destroy domain {} after it ended: {e}", self.guest.name);
                }
                status
            }
        };
        Ok(status)
    }

    /// One round of the relay; Some once the guest has ended.
    fn step(&mut self) -> Result<Option<Ended>, MonitorError> {
        let stdin = io::stdin();
        let console_events = if self.console_open { PollFlags::POLLIN } else { PollFlags::empty() };
        let mut fds = vec![
            PollFd::new(self.console.as_fd(), console_events),
            PollFd::new(self.store.fd(), PollFlags::POLLIN),
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
        ];
        if self.stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let timeout = if self.store.has_queued_events() {
            PollTimeout::ZERO
        } else if self.reported {
            PollTimeout::from(SHUTDOWN_POLL.as_millis() as u8)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Err(nix::Error::EINTR) => return Ok(None),
            Err(e) => return Err(MonitorError::System(format!("poll: {e}"))),
            Ok(0) if self.reported => {
                drop(fds);
                return self.check_domain();
            }
            Ok(_) => {}
        }
        let ready = |fd: &PollFd| fd.revents().map_or(false, |r| !r.is_empty());
        let (console, store, signals) = (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]));
        let stdin_ready = fds.get(3).map_or(false, ready);
        drop(fds);
        if console && self.console_open {
            self.console_open = self.copy_console();
        }
        if stdin_ready {
            self.copy_stdin();
        }
        if signals {
            self.forward_signals();
        }
        if store || self.store.has_queued_events() {
            let path = self.store.next_event().map_err(MonitorError::Xenstore)?;
            // Only a domain change or a reported status is worth an `xl list`: each one is a
            // process start, which competes with the guest's boot for dom0's CPU.
            if path.ends_with(keys::EXIT_CODE) {
                let reported = self.store.read(&path).map_err(MonitorError::Xenstore)?.is_some();
                self.reported |= reported;
                if reported {
                    return self.check_domain();
                }
            } else if path == "@releaseDomain" {
                return self.check_domain();
            }
        }
        Ok(None)
    }

    fn check_domain(&mut self) -> Result<Option<Ended>, MonitorError> {
        match self.xen.state(self.guest.domain()) {
            Ok(None) => Ok(Some(Ended::Gone)),
            Ok(Some(state)) if state.dying => Ok(Some(Ended::Gone)),
            Ok(Some(state)) if state.ended.is_some() => Ok(Some(Ended::Kept(state))),
            Ok(Some(_)) => Ok(None),
            Err(e) => {
                eprintln!("runx: cannot read the state of domain {}: {e}", self.guest.name);
                Ok(None)
            }
        }
    }

    /// Copies what the console has to stdout; false once the console is closed.
    fn copy_console(&mut self) -> bool {
        let mut buf = [0u8; 16384];
        match nix::unistd::read(self.console.as_raw_fd(), &mut buf) {
            Ok(0) | Err(nix::Error::EIO) => false,
            Ok(n) => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                true
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => true,
            Err(_) => false,
        }
    }

    fn copy_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        match io::stdin().lock().read(&mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => {
                let mut written = 0;
                while written < n {
                    match nix::unistd::write(&self.console, &buf[written..n]) {
                        Ok(w) => written += w,
                        Err(nix::Error::EAGAIN) => {
                            let mut fds = [PollFd::new(self.console.as_fd(), PollFlags::POLLOUT)];
                            let _ = poll(&mut fds, PollTimeout::from(100u8));
                        }
                        Err(_) => break,
                    }
                }
            }
        }
    }

    fn forward_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let signo = info.ssi_signo as i32;
            if !self.guest.kind.forwards(signo) {
                continue;
            }
            let delivered = self
                .guest
                .kind
                .signal_request(self.guest.domid, signo)
                .map_err(|e| e.to_string())
                .and_then(|(key, value)| self.store.write(&key, &value).map_err(|e| e.to_string()));
            if let Err(e) = delivered {
                eprintln!("runx: cannot forward signal {signo} to the container: {e}");
            }
        }
    }

    /// Relays the console until xenconsoled has taken the guest's last output out of its ring
    /// (the domain is kept until then). Without privcmd (not in dom0) only the quiet time of
    /// `drain_console` is left.
    fn wait_ring_emptied(&mut self) {
        let key = keys::of_domain(self.guest.domid, "console/ring-ref");
        let frame = self.store.read(&key).ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
        let Some(ring) = frame.and_then(|f| self.xen.console_ring(self.guest.domid, f).ok()) else { return };
        let deadline = Instant::now() + RING_WAIT;
        while self.console_open && ring.unread() > 0 {
            if Instant::now() >= deadline {
                eprintln!(
                    "runx: xenconsoled did not read the last {} bytes container {} wrote within {RING_WAIT:?}: they are lost",
                    ring.unread(),
                    self.guest.name
                );
                return;
            }
            if readable(self.console.as_fd(), Duration::from_millis(10)).unwrap_or(false) {
                self.console_open = self.copy_console();
            }
        }
    }

    /// Reads the last output: xenconsoled may still be copying it when the guest is down.
    fn drain_console(&mut self) {
        while self.console_open && readable(self.console.as_fd(), DRAIN_QUIET).unwrap_or(false) {
            self.console_open = self.copy_console();
        }
    }

    fn exit_status(&mut self, state: DomainState) -> i32 {
        let key = keys::of_domain(self.guest.domid, keys::EXIT_CODE);
        let reported = self.store.read(&key).ok().flatten().and_then(|v| v.trim().parse::<i32>().ok());
        match self.guest.kind.exit_status(reported, state.ended) {
            Some(code) => code,
            None => {
                let how = match state.ended {
                    Some(Shutdown::Crash) => "crashed",
                    Some(Shutdown::Watchdog) => "was stopped by its watchdog",
                    _ => "shut down",
                };
                eprintln!(
                    "runx: the guest of container {} {how} before reporting an exit status (see `xl dmesg` and /var/log/xen/xl-{}.log)",
                    self.guest.name, self.guest.name
                );
                GUEST_FAILED
            }
        }
    }
}
