//! `runx exec`, the host's side: asks the guest's runx-init for a session, connects to the vchan
//! it offers and drives the protocol of `runx_launch::exec`: the process's launch spec out,
//! stdin, signals and terminal sizes out, output and the exit status back.

use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use runx_launch::exec::{self as proto, Frames};
use runx_launch::keys;

use crate::xen::{Channel, Domain, Xen, XenError};

/// How long the guest has to offer its vchan, and then to start the process.
const OFFER_WAIT: Duration = Duration::from_secs(30);
const START_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Xen(#[from] XenError),
    #[error("the guest did not answer the exec request within {0:?}: is it still running, with a runx-init that runs exec (CONFIG_XEN_GRANT_DEV_ALLOC in its kernel)?")]
    NoOffer(Duration),
    #[error("cannot connect to the guest's vchan: {0}: does dom0 have /dev/xen/gntdev and /dev/xen/evtchn (modules xen-gntdev, xen-evtchn)?")]
    Connect(io::Error),
    #[error("the exec channel: {0}")]
    Channel(io::Error),
    #[error("the guest closed the exec channel before the process started")]
    Closed,
    #[error("the guest did not start the process within {0:?}")]
    NoStart(Duration),
    /// The process could not start; runc's exit code for it.
    #[error("{message}")]
    Failed { exit_code: i32, message: String },
}

/// One exec'd process's channel.
pub struct Session {
    channel: Box<dyn Channel>,
    frames: Frames,
    outbox: Vec<u8>,
    closed: bool,
}

/// What arrived from the guest.
pub enum Incoming {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The exit code (128 + N after signal N).
    Exited(i32),
}

/// Asks the guest of `domain` for session `id` and connects to it.
pub fn open(xen: &dyn Xen, domain: Domain<'_>, id: &str) -> Result<Session, ExecError> {
    let key = |k: String| keys::of_domain(domain.domid, &k);
    xen.write_for(domain, &key(proto::request_key(id)), "")?;
    let deadline = Instant::now() + OFFER_WAIT;
    let (ring_ref, port) = loop {
        let ring_ref = xen.read(&key(proto::ring_ref_key(id)))?.and_then(|v| v.parse().ok());
        let port = xen.read(&key(proto::port_key(id)))?.and_then(|v| v.parse().ok());
        if let (Some(ring_ref), Some(port)) = (ring_ref, port) {
            break (ring_ref, port);
        }
        if Instant::now() > deadline || xen.state(domain)?.map_or(true, |s| s.ended.is_some()) {
            return Err(ExecError::NoOffer(OFFER_WAIT));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let channel = xen.channel(domain.domid, ring_ref, port).map_err(ExecError::Connect)?;
    Ok(Session { channel, frames: Frames::default(), outbox: Vec::new(), closed: false })
}

/// Removes what the request left in the guest's xenstore.
pub fn close(xen: &dyn Xen, domain: Domain<'_>, id: &str) {
    let path = keys::of_domain(domain.domid, &proto::request_key(id));
    if xen.owns(domain).unwrap_or(false) {
        let _ = xen.remove(&path);
    }
}

impl Session {
    /// Sends the process's launch spec and waits until the guest started it.
    pub fn start(&mut self, spec_json: &[u8]) -> Result<(), ExecError> {
        self.queue(proto::PROCESS, spec_json);
        let deadline = Instant::now() + START_WAIT;
        loop {
            self.pump().map_err(ExecError::Channel)?;
            match self.frames.take() {
                Ok(Some((proto::STARTED, _))) => return Ok(()),
                Ok(Some((proto::FAILED, payload))) => {
                    let exit_code = proto::i32_at(&payload, 0).unwrap_or(125);
                    let message = String::from_utf8_lossy(payload.get(4..).unwrap_or_default()).into_owned();
                    return Err(ExecError::Failed { exit_code, message });
                }
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => return Err(ExecError::Channel(io::Error::other(format!("frame of {} bytes", e.0)))),
            }
            if self.closed {
                return Err(ExecError::Closed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ExecError::NoStart(START_WAIT));
            }
            self.wait(left.min(Duration::from_secs(1)));
        }
    }

    /// Queues a frame for the guest; `pump` sends it.
    pub fn queue(&mut self, kind: u8, payload: &[u8]) {
        self.outbox.extend(proto::frame(kind, payload));
    }

    /// Whether frames wait to be sent (the guest's ring is full).
    pub fn backlog(&self) -> usize {
        self.outbox.len()
    }

    /// The descriptor that becomes readable when the guest writes or reads.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.channel.fd()
    }

    /// Sends and receives what can be without blocking.
    pub fn pump(&mut self) -> io::Result<()> {
        self.channel.handle_event()?;
        while !self.outbox.is_empty() {
            match self.channel.try_write(&self.outbox) {
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                    self.outbox.clear();
                    self.closed = true;
                }
                Err(e) => return Err(e),
            }
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.channel.try_read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(());
                }
                Ok(n) => self.frames.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next thing the guest sent, if a whole frame has arrived.
    pub fn incoming(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            let frame = self.frames.take().map_err(|e| io::Error::other(format!("frame of {} bytes", e.0)))?;
            let Some((kind, payload)) = frame else { return Ok(None) };
            return Ok(Some(match kind {
                proto::STDOUT => Incoming::Stdout(payload),
                proto::STDERR => Incoming::Stderr(payload),
                proto::EXITED => Incoming::Exited(proto::i32_at(&payload, 0).unwrap_or(255)),
                _ => continue,
            }));
        }
    }

    /// Whether the guest closed its side (after its last frame).
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn wait(&self, timeout: Duration) {
        let fd = self.channel.fd();
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(millis));
    }
}

/// Relays the process's stdio and the signals runx exec receives until the process ends;
/// returns its exit code (137 when the guest went down first). `terminal`: stdin is a terminal
/// whose size the process's pty follows (SIGWINCH).
pub fn relay(xen: &dyn Xen, domain: Domain<'_>, session: &mut Session, terminal: bool) -> io::Result<i32> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};

    let mut set = SigSet::empty();
    for &signal in crate::monitor::FORWARDED {
        set.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let signals = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    if terminal {
        send_size(session);
    }
    let stdin = io::stdin();
    let mut stdin_open = true;
    let mut checked = Instant::now();
    let guest_gone = || xen.state(domain).map_or(true, |s| s.map_or(true, |s| s.ended.is_some()));
    loop {
        if let Err(e) = session.pump() {
            // A guest destroyed under the relay can fail the channel before xenstore says so.
            return if guest_gone() { Ok(GUEST_GONE) } else { Err(e) };
        }
        while let Some(incoming) = session.incoming()? {
            match incoming {
                Incoming::Stdout(bytes) => write_all(1, &bytes),
                Incoming::Stderr(bytes) => write_all(2, &bytes),
                Incoming::Exited(code) => return Ok(code),
            }
        }
        if session.closed() {
            return Ok(GUEST_GONE);
        }
        if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            if guest_gone() {
                return Ok(GUEST_GONE);
            }
        }
        // Input waits in its pipe while the guest's ring is full.
        let want_stdin = stdin_open && session.backlog() < 64 * 1024;
        let mut fds = [
            PollFd::new(session.fd(), PollFlags::POLLIN),
            PollFd::new(stdin.as_fd(), if want_stdin { PollFlags::POLLIN } else { PollFlags::empty() }),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if let Err(e) = poll(&mut fds, PollTimeout::from(1000u16)) {
            if e != nix::errno::Errno::EINTR {
                return Err(e.into());
            }
        }
        let stdin_ready = fds[1].revents().map_or(false, |r| !r.is_empty());
        let signal_ready = fds[2].revents().map_or(false, |r| !r.is_empty());
        if want_stdin && stdin_ready {
            let mut buf = [0u8; 16 * 1024];
            match nix::unistd::read(0, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    session.queue(proto::STDIN_CLOSED, &[]);
                }
                Ok(n) => session.queue(proto::STDIN, &buf[..n]),
            }
        }
        if signal_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo == Signal::SIGWINCH as u32 {
                    send_size(session);
                } else {
                    session.queue(proto::SIGNAL, &(info.ssi_signo as i32).to_le_bytes());
                }
            }
        }
    }
}

/// runx exec's exit code when the guest ended before the process reported its own: as if
/// killed, which it was.
pub const GUEST_GONE: i32 = 137;

fn write_all(fd: i32, mut bytes: &[u8]) {
    // SAFETY: fds 1 and 2 are open for the life of runx exec.
    let out = unsafe { BorrowedFd::borrow_raw(fd) };
    while !bytes.is_empty() {
        match nix::unistd::write(out, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            // The reader went away: the output has nowhere to go.
            Err(_) => return,
        }
    }
}

/// Queues the size of stdin's terminal for the process's pty.
fn send_size(session: &mut Session) {
    let mut size = nix::libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize, which `size` is.
    if unsafe { nix::libc::ioctl(0, nix::libc::TIOCGWINSZ, &mut size) } == 0 {
        let mut payload = size.ws_row.to_le_bytes().to_vec();
        payload.extend_from_slice(&size.ws_col.to_le_bytes());
        session.queue(proto::RESIZE, &payload);
    }
}
