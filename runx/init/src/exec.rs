//! Processes the host starts in the running container (`runx exec`): a session per request
//! under `data/runx/exec`, each over a vchan this guest offers to dom0 (`runx_launch::exec`
//! has the protocol). Nothing here blocks PID 1: output waits in the process's pipe while the
//! host has not read what came before, so a fast writer is slowed, never cut.

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::PollFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, read, write, Pid};
use runx_launch::exec::{self as proto, Frames};
use runx_launch::LaunchSpec;
use runx_vchan::{Orders, Vchan};
use runx_xenstore::Xenstore;

use crate::process::{self, Stdio};
use crate::{terminal, Failure};

/// dom0's domid: the only peer a session is offered to.
const HOST: u16 = 0;
/// 4 KiB towards the guest (stdin), 64 KiB towards dom0 (output).
const ORDERS: Orders = Orders { left: 12, right: 16 };
/// The most output read at once; it is framed and sent before more is read.
const CHUNK: usize = 16 * 1024;

struct Output {
    kind: u8,
    fd: OwnedFd,
}

struct Running {
    pid: Pid,
    stdin: Option<OwnedFd>,
    /// Bytes for stdin that its pipe (or pty) has not taken yet.
    pending: Vec<u8>,
    stdin_closing: bool,
    outputs: Vec<Output>,
    /// The pty's master, for RESIZE.
    terminal: Option<OwnedFd>,
    status: Option<(i32, i32)>,
}

struct Session {
    id: String,
    chan: Vchan,
    frames: Frames,
    /// Framed bytes for the host that the vchan has not taken yet.
    outbox: Vec<u8>,
    running: Option<Running>,
    /// Nothing more to send once the outbox is empty: the session then ends.
    done: bool,
}

pub struct Sessions {
    root: PathBuf,
    list: Vec<Session>,
}

fn nonblocking(fd: &OwnedFd) {
    let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
}

impl Sessions {
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_owned(), list: Vec::new() }
    }

    /// A watch event under the requests: a new request gets a vchan, offered in xenstore.
    pub fn request(&mut self, store: &mut Xenstore, path: &str) {
        let Some(id) = proto::request_of(path) else { return };
        if self.list.iter().any(|s| s.id == id) || !matches!(store.read(path), Ok(Some(_))) {
            return;
        }
        let offered = Vchan::serve(HOST, ORDERS).and_then(|(chan, offer)| {
            store.write(&proto::ring_ref_key(id), &offer.ring_ref.to_string())?;
            store.write(&proto::port_key(id), &offer.port.to_string())?;
            Ok(chan)
        });
        match offered {
            Ok(chan) => self.list.push(Session {
                id: id.to_owned(),
                chan,
                frames: Frames::default(),
                outbox: Vec::new(),
                running: None,
                done: false,
            }),
            Err(e) => {
                eprintln!("runx-init: exec {id}: cannot offer a vchan: {e}");
                let _ = store.remove(path);
            }
        }
    }

    /// What to poll for: each vchan's event channel, and the process's ends that have work.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds = Vec::new();
        for session in &self.list {
            // SAFETY: the vchan's descriptor lives as long as the session, which outlives `fds`.
            fds.push((unsafe { BorrowedFd::borrow_raw(session.chan.as_raw_fd()) }, PollFlags::POLLIN));
            let Some(running) = &session.running else { continue };
            if session.outbox.is_empty() {
                fds.extend(running.outputs.iter().map(|o| (o.fd.as_fd(), PollFlags::POLLIN)));
            }
            if let (Some(stdin), false) = (&running.stdin, running.pending.is_empty()) {
                fds.push((stdin.as_fd(), PollFlags::POLLOUT));
            }
        }
        fds
    }

    /// Takes the exit status of `pid`, if it is a session's process.
    pub fn reaped(&mut self, pid: Pid, status: (i32, i32)) {
        let running = self.list.iter_mut().filter_map(|s| s.running.as_mut()).find(|r| r.pid == pid);
        if let Some(running) = running {
            running.status = Some(status);
        }
    }

    /// Does whatever can be done without blocking, and ends the sessions that are over.
    pub fn pump(&mut self, store: &mut Xenstore) {
        let root = self.root.clone();
        for session in &mut self.list {
            session.pump(&root);
        }
        self.list.retain(|session| {
            let over =
                session.done && session.outbox.is_empty() || !session.chan.is_open() && session.running.is_none();
            if over {
                let _ = store.remove(&proto::request_key(&session.id));
            }
            !over
        });
    }
}

impl Session {
    fn pump(&mut self, root: &Path) {
        let _ = self.chan.handle_event();
        self.receive(root);
        if let Some(running) = &mut self.running {
            running.feed_stdin();
            if self.outbox.is_empty() {
                running.collect(&mut self.outbox);
            }
            if let (Some((code, signal)), true) = (running.status, running.outputs.is_empty()) {
                self.outbox.extend(proto::frame(proto::EXITED, &proto::pair(code, signal)));
                self.running = None;
                self.done = true;
            }
        }
        self.flush();
    }

    fn receive(&mut self, root: &Path) {
        let mut buf = [0u8; 4096];
        loop {
            match self.chan.try_read(&mut buf) {
                Ok(0) => {
                    // The host went away (runx exec killed): so does its process.
                    if let Some(running) = &self.running {
                        let _ = kill(running.pid, Signal::SIGKILL);
                    }
                    self.done = true;
                    break;
                }
                Ok(n) => self.frames.push(&buf[..n]),
                Err(_) => break,
            }
        }
        loop {
            match self.frames.take() {
                Ok(Some((kind, payload))) => self.handle(kind, &payload, root),
                Ok(None) => break,
                Err(_) => {
                    self.fail(125, "exec: the host sent a frame over the protocol's limit".into());
                    break;
                }
            }
        }
    }

    fn handle(&mut self, kind: u8, payload: &[u8], root: &Path) {
        match (kind, self.running.as_mut()) {
            (proto::PROCESS, None) if !self.done => match start(payload, root) {
                Ok(running) => {
                    self.outbox.extend(proto::frame(proto::STARTED, &[]));
                    self.running = Some(running);
                }
                Err(failure) => self.fail(failure.exit_code, failure.message),
            },
            (proto::STDIN, Some(running)) => running.pending.extend_from_slice(payload),
            (proto::STDIN_CLOSED, Some(running)) => running.stdin_closing = true,
            (proto::SIGNAL, Some(running)) => {
                if let Some(signal) = proto::i32_at(payload, 0).and_then(|n| Signal::try_from(n).ok()) {
                    let _ = kill(running.pid, signal);
                }
            }
            (proto::RESIZE, Some(running)) => {
                if let (Some(master), Some(rows), Some(cols)) = (&running.terminal, payload.get(..2), payload.get(2..4))
                {
                    let size = nix::libc::winsize {
                        ws_row: u16::from_le_bytes([rows[0], rows[1]]),
                        ws_col: u16::from_le_bytes([cols[0], cols[1]]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ reads one winsize, which `size` is.
                    unsafe { nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
                }
            }
            _ => {}
        }
    }

    fn fail(&mut self, code: i32, message: String) {
        let mut payload = code.to_le_bytes().to_vec();
        payload.extend_from_slice(message.as_bytes());
        self.outbox.extend(proto::frame(proto::FAILED, &payload));
        self.done = true;
    }

    fn flush(&mut self) {
        while !self.outbox.is_empty() {
            match self.chan.try_write(&self.outbox) {
                Ok(n) if n > 0 => {
                    self.outbox.drain(..n);
                }
                Err(e) if e.kind() != ErrorKind::WouldBlock => {
                    // Nobody reads any more: what is left is dropped with the session.
                    self.outbox.clear();
                    self.done = true;
                }
                _ => break,
            }
        }
    }
}

impl Running {
    fn feed_stdin(&mut self) {
        if let Some(stdin) = &self.stdin {
            while !self.pending.is_empty() {
                match write(stdin, &self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n);
                    }
                    Err(Errno::EAGAIN) => return,
                    Err(_) => {
                        self.pending.clear();
                        self.stdin = None;
                        return;
                    }
                }
            }
        }
        if self.stdin_closing && self.pending.is_empty() && self.terminal.is_none() {
            self.stdin = None;
        }
    }

    /// Reads one chunk of output into `outbox`, framed; an output that ended is dropped.
    fn collect(&mut self, outbox: &mut Vec<u8>) {
        let mut buf = vec![0u8; CHUNK];
        let mut index = 0;
        while index < self.outputs.len() && outbox.is_empty() {
            let output = &self.outputs[index];
            match read(output.fd.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => outbox.extend(proto::frame(output.kind, &buf[..n])),
                Err(Errno::EAGAIN) => index += 1,
                // End of file, or EIO from a pty whose process has gone.
                _ => {
                    self.outputs.remove(index);
                }
            }
        }
    }
}

/// Starts the process the PROCESS frame describes, with pipes or (`terminal`) a pty.
fn start(payload: &[u8], root: &Path) -> Result<Running, Failure> {
    let spec = LaunchSpec::from_json(payload).map_err(|e| Failure::setup(format!("exec: {e}")))?;
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| Failure::sys("pipe", e));
    let (failure, running) = if spec.process.terminal {
        let pty = terminal::open_pty(root)?;
        let (pid, failure) = process::spawn(&spec.process, root, &Stdio::Terminal(&pty.slave))?;
        let master = pty.master;
        let input = master.try_clone().map_err(|e| Failure::setup(format!("exec: {e}")))?;
        let output = master.try_clone().map_err(|e| Failure::setup(format!("exec: {e}")))?;
        let outputs = vec![Output { kind: proto::STDOUT, fd: output }];
        (failure, Running::new(pid, input, outputs, Some(master)))
    } else {
        let (stdin_read, stdin_write) = pipe()?;
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let stdio = Stdio::Pipes([&stdin_read, &stdout_write, &stderr_write]);
        let (pid, failure) = process::spawn(&spec.process, root, &stdio)?;
        let outputs =
            vec![Output { kind: proto::STDOUT, fd: stdout_read }, Output { kind: proto::STDERR, fd: stderr_read }];
        (failure, Running::new(pid, stdin_write, outputs, None))
    };
    match failure {
        Some(failure) => Err(failure),
        None => Ok(running),
    }
}

impl Running {
    fn new(pid: Pid, stdin: OwnedFd, outputs: Vec<Output>, terminal: Option<OwnedFd>) -> Self {
        nonblocking(&stdin);
        for output in &outputs {
            nonblocking(&output.fd);
        }
        Running { pid, stdin: Some(stdin), pending: Vec::new(), stdin_closing: false, outputs, terminal, status: None }
    }
}
