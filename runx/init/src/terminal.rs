//! A terminal container's pty. The process gets a pty of the container's own devpts, so that its
//! terminal is `/dev/pts/N` as under runc (the guest console is outside the container's root,
//! and `tty` cannot name it). runx-init relays the pty to the console, which stays raw: the pty
//! alone is the terminal, with its line discipline and the process as its session's leader.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::libc;
use nix::poll::PollFlags;
use nix::sys::stat::Mode;
use nix::unistd::{read, write};

use crate::Failure;

/// Both ends of the process's pty.
pub struct Pty {
    pub master: OwnedFd,
    /// The process's end: fds 0, 1 and 2 of the process.
    pub slave: OwnedFd,
}

/// Opens a pty in the devpts mounted at `root`/dev/pts, sized like the console.
pub fn open_pty(root: &Path) -> Result<Pty, Failure> {
    let failed = |what: &str, e: Errno| Failure::sys(&format!("terminal: {what} in the container's /dev/pts"), e);
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let master = open(&root.join("dev/pts/ptmx"), flags, Mode::empty()).map_err(|e| failed("open ptmx", e))?;
    // SAFETY: the raw fd was just returned by open and is owned by nothing else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int; TIOCGPTPEER returns a new fd; TIOC[GS]WINSZ read or write
    // one winsize, which `size` is.
    let slave = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(failed("unlock the pty", Errno::last()));
        }
        let peer_flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        let slave = libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, peer_flags);
        if slave < 0 {
            return Err(failed("open the pty's peer", Errno::last()));
        }
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(slave, libc::TIOCSWINSZ, &size);
        }
        OwnedFd::from_raw_fd(slave)
    };
    Ok(Pty { master, slave })
}

/// Moves bytes between the console (fds 0 and 1) and the pty's master without ever blocking
/// PID 1: what the console sends waits in `pending` while the pty's input queue is full.
pub struct Relay {
    master: OwnedFd,
    pending: Vec<u8>,
    console_open: bool,
    master_open: bool,
}

impl Relay {
    /// Takes the master; the slave is the process's alone (closed here once it has it).
    pub fn new(pty: Pty) -> Self {
        Relay { master: pty.master, pending: Vec::new(), console_open: true, master_open: true }
    }

    pub fn master(&self) -> &OwnedFd {
        &self.master
    }

    /// Whether to read the console now: not while earlier input still waits for the pty.
    pub fn wants_console(&self) -> bool {
        self.console_open && self.pending.is_empty()
    }

    /// What to poll the master for.
    pub fn master_events(&self) -> PollFlags {
        match (self.master_open, self.pending.is_empty()) {
            (false, _) => PollFlags::empty(),
            (true, true) => PollFlags::POLLIN,
            (true, false) => PollFlags::POLLIN | PollFlags::POLLOUT,
        }
    }

    /// The console has input for the process.
    pub fn console_ready(&mut self) {
        let mut buf = [0u8; 4096];
        match read(0, &mut buf) {
            Ok(0) => self.console_open = false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.flush();
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.console_open = false,
        }
    }

    /// The master is ready for what `events` says.
    pub fn master_ready(&mut self, events: PollFlags) {
        if events.contains(PollFlags::POLLOUT) {
            self.flush();
        }
        if events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.drain();
        }
    }

    fn flush(&mut self) {
        match write(self.master.as_fd(), &self.pending) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.pending.clear(),
        }
    }

    /// Copies what the process wrote to the console; once every holder of the slave has closed
    /// it (EIO), the master is done.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while self.master_open {
            match read(self.master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => self.master_open = false,
                Ok(n) => write_console(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

fn write_console(mut bytes: &[u8]) {
    let stdout = std::io::stdout();
    while !bytes.is_empty() {
        match write(stdout.as_fd(), bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
