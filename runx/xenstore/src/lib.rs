//! Just enough of the xenstore wire protocol (xs_wire.h) for runx: read, write, remove,
//! watch. The guest's PID 1 speaks it over /dev/xen/xenbus; the host runtime over
//! xenstored's socket. Paths without a leading '/' are relative to the caller's own domain.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

const XS_DIRECTORY: u32 = 1;
const XS_READ: u32 = 2;
const XS_WATCH: u32 = 4;
const XS_WRITE: u32 = 11;
const XS_RM: u32 = 13;
const XS_WATCH_EVENT: u32 = 15;
const XS_ERROR: u32 = 16;

/// The kernel's xenbus device: the only way in from a guest, and also usable in dom0.
pub const XENBUS_DEVICE: &str = "/dev/xen/xenbus";

/// Where xenstored listens in dom0, newest layout first; `XENSTORED_PATH` (as libxenstore
/// reads it) overrides them.
const DAEMON_SOCKETS: &[&str] = &["/run/xenstored/socket", "/var/run/xenstored/socket"];

enum Transport {
    Device(File),
    Socket(UnixStream),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Device(f) => f.read(buf),
            Transport::Socket(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Device(f) => f.write(buf),
            Transport::Socket(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct Xenstore {
    dev: Transport,
    next_request: u32,
    /// Watch events that arrived while waiting for a reply: the paths that fired.
    events: VecDeque<String>,
}

struct Message {
    kind: u32,
    request: u32,
    payload: Vec<u8>,
}

fn protocol_error(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Xenstore {
    /// Opens the xenbus device (how a guest reaches xenstore).
    pub fn open() -> io::Result<Self> {
        let dev = OpenOptions::new().read(true).write(true).open(XENBUS_DEVICE)?;
        Ok(Self::over(Transport::Device(dev)))
    }

    /// Connects to xenstored from dom0: `XENSTORED_PATH` if set, else the daemon's socket,
    /// else the xenbus device.
    pub fn connect() -> io::Result<Self> {
        if let Some(path) = std::env::var_os("XENSTORED_PATH") {
            return Self::connect_to(PathBuf::from(path));
        }
        for socket in DAEMON_SOCKETS {
            if let Ok(stream) = UnixStream::connect(socket) {
                return Ok(Self::over(Transport::Socket(stream)));
            }
        }
        Self::open()
    }

    fn connect_to(path: PathBuf) -> io::Result<Self> {
        if path.starts_with("/dev") {
            let dev = OpenOptions::new().read(true).write(true).open(&path)?;
            return Ok(Self::over(Transport::Device(dev)));
        }
        let stream = UnixStream::connect(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to xenstored at {}: {e}", path.display())))?;
        Ok(Self::over(Transport::Socket(stream)))
    }

    fn over(dev: Transport) -> Self {
        Self { dev, next_request: 1, events: VecDeque::new() }
    }

    /// The descriptor to poll for watch events.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.dev {
            Transport::Device(f) => f.as_fd(),
            Transport::Socket(s) => s.as_fd(),
        }
    }

    fn read_message(&mut self) -> io::Result<Message> {
        let mut header = [0u8; 16];
        self.dev.read_exact(&mut header)?;
        let word = |i: usize| u32::from_ne_bytes(header[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let mut payload = vec![0u8; word(3) as usize];
        self.dev.read_exact(&mut payload)?;
        Ok(Message { kind: word(0), request: word(1), payload })
    }

    /// Sends a request and returns the reply's payload, queueing watch events that come first.
    fn request(&mut self, kind: u32, payload: &[u8]) -> io::Result<Vec<u8>> {
        let request = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        let mut msg = Vec::with_capacity(16 + payload.len());
        for word in [kind, request, 0, payload.len() as u32] {
            msg.extend_from_slice(&word.to_ne_bytes());
        }
        msg.extend_from_slice(payload);
        self.dev.write_all(&msg)?;
        loop {
            let reply = self.read_message()?;
            if reply.kind == XS_WATCH_EVENT {
                self.queue_event(&reply.payload);
                continue;
            }
            if reply.request != request {
                return Err(protocol_error(format!(
                    "xenstore answered request {} while {request} was pending",
                    reply.request
                )));
            }
            if reply.kind == XS_ERROR {
                let name = String::from_utf8_lossy(&reply.payload).trim_end_matches('\0').to_owned();
                let kind = if name == "ENOENT" { io::ErrorKind::NotFound } else { io::ErrorKind::Other };
                return Err(io::Error::new(kind, format!("xenstore: {name}")));
            }
            return Ok(reply.payload);
        }
    }

    fn queue_event(&mut self, payload: &[u8]) {
        let path = payload.split(|&b| b == 0).next().unwrap_or_default();
        self.events.push_back(String::from_utf8_lossy(path).into_owned());
    }

    pub fn write(&mut self, path: &str, value: &str) -> io::Result<()> {
        let mut payload = path.as_bytes().to_vec();
        payload.push(0);
        payload.extend_from_slice(value.as_bytes());
        self.request(XS_WRITE, &payload).map(drop)
    }

    /// The value at `path`, or None when it does not exist.
    pub fn read(&mut self, path: &str) -> io::Result<Option<String>> {
        match self.request(XS_READ, &nul_terminated(&[path])) {
            Ok(value) => Ok(Some(String::from_utf8_lossy(&value).into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The names of `path`'s children, or None when it does not exist.
    pub fn directory(&mut self, path: &str) -> io::Result<Option<Vec<String>>> {
        match self.request(XS_DIRECTORY, &nul_terminated(&[path])) {
            Ok(list) => Ok(Some(
                list.split(|&b| b == 0)
                    .filter(|name| !name.is_empty())
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .collect(),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn remove(&mut self, path: &str) -> io::Result<()> {
        match self.request(XS_RM, &nul_terminated(&[path])) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Asks for an event whenever `path` (or anything below it) changes; one fires at once.
    pub fn watch(&mut self, path: &str, token: &str) -> io::Result<()> {
        self.request(XS_WATCH, &nul_terminated(&[path, token])).map(drop)
    }

    /// The next watch event's path: a queued one, or one read from the device (which may block).
    pub fn next_event(&mut self) -> io::Result<String> {
        if let Some(path) = self.events.pop_front() {
            return Ok(path);
        }
        let msg = self.read_message()?;
        if msg.kind != XS_WATCH_EVENT {
            return Err(protocol_error(format!(
                "unexpected xenstore message type {} with no request pending",
                msg.kind
            )));
        }
        self.queue_event(&msg.payload);
        Ok(self.events.pop_front().expect("just queued"))
    }

    pub fn has_queued_events(&self) -> bool {
        !self.events.is_empty()
    }
}

fn nul_terminated(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    out
}
