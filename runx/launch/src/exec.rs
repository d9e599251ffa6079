//! Exec: one more process in a running guest (`runx exec`), the same for both sides.
//!
//! The host asks by creating `data/runx/exec/ID` in the guest's xenstore; runx-init offers a
//! vchan for it (`runx-vchan`: the guest serves, dom0 connects) and writes the offer under that
//! key (`ring-ref`, `port`). Over the vchan, both sides send frames: a kind byte, the payload's
//! length (u32, little-endian), the payload. The host's first frame is `PROCESS`: a launch spec
//! whose process is the one to run (its other fields are not used). The guest answers
//! `STARTED` or `FAILED`, then relays the process's output until `EXITED`, and closes.

/// The folder of exec requests, relative to the guest's own domain.
pub const REQUESTS: &str = "data/runx/exec";

/// host -> guest: the launch spec JSON of the process.
pub const PROCESS: u8 = 1;
/// host -> guest: bytes for the process's stdin.
pub const STDIN: u8 = 2;
/// host -> guest: the process's stdin ends (no payload).
pub const STDIN_CLOSED: u8 = 3;
/// host -> guest: a signal number for the process (u32).
pub const SIGNAL: u8 = 4;
/// host -> guest: the terminal's size, rows then columns (u16 each).
pub const RESIZE: u8 = 5;
/// guest -> host: the process runs (no payload).
pub const STARTED: u8 = 16;
/// guest -> host: bytes the process wrote to stdout (or its terminal).
pub const STDOUT: u8 = 17;
/// guest -> host: bytes the process wrote to stderr.
pub const STDERR: u8 = 18;
/// guest -> host: how the process ended: the exit code (128 + N after signal N), then the
/// signal or 0 (i32 each).
pub const EXITED: u8 = 19;
/// guest -> host: the process could not start: runc's exit code (i32), then why (UTF-8).
pub const FAILED: u8 = 20;

/// A frame's kind and length.
pub const HEADER: usize = 5;
/// The largest payload either side sends or takes: a launch spec fits.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// The key of exec request `id`, and the keys of the guest's offer for it.
pub fn request_key(id: &str) -> String {
    [REQUESTS, "/", id].concat()
}

pub fn ring_ref_key(id: &str) -> String {
    [REQUESTS, "/", id, "/ring-ref"].concat()
}

pub fn port_key(id: &str) -> String {
    [REQUESTS, "/", id, "/port"].concat()
}

/// The request `path` (a watch event's) names, if it is a request itself rather than a key
/// under one.
pub fn request_of(path: &str) -> Option<&str> {
    let id = path.strip_prefix(REQUESTS)?.strip_prefix('/')?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// `payload` framed as `kind`.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Two i32s, as `EXITED` and the start of `FAILED` carry them.
pub fn pair(a: i32, b: i32) -> [u8; 8] {
    let mut out = [0; 8];
    out[..4].copy_from_slice(&a.to_le_bytes());
    out[4..].copy_from_slice(&b.to_le_bytes());
    out
}

/// The i32 at `at` of a payload, if it is long enough.
pub fn i32_at(payload: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(payload.get(at..at + 4)?.try_into().ok()?))
}

/// Collects a byte stream into whole frames.
#[derive(Default)]
pub struct Frames {
    buffer: Vec<u8>,
}

/// A frame whose length is over `MAX_PAYLOAD`: the peer is not speaking this protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct Oversized(pub u32);

impl Frames {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn take(&mut self) -> Result<Option<(u8, Vec<u8>)>, Oversized> {
        let Some(header) = self.buffer.get(..HEADER) else { return Ok(None) };
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
        if len as usize > MAX_PAYLOAD {
            return Err(Oversized(len));
        }
        let end = HEADER + len as usize;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let kind = self.buffer[0];
        let payload = self.buffer[HEADER..end].to_vec();
        self.buffer.drain(..end);
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arrive_whole_whatever_the_pieces() {
        let mut stream = frame(STDOUT, b"hello");
        stream.extend(frame(EXITED, &pair(3, 0)));
        stream.extend(frame(STDIN_CLOSED, b""));
        for split in 0..stream.len() {
            let mut frames = Frames::default();
            let mut got = Vec::new();
            for piece in [&stream[..split], &stream[split..]] {
                frames.push(piece);
                while let Some(f) = frames.take().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(
                got,
                [(STDOUT, b"hello".to_vec()), (EXITED, pair(3, 0).to_vec()), (STDIN_CLOSED, vec![])],
                "split at {split}"
            );
        }
        assert_eq!(i32_at(&pair(3, -9), 4), Some(-9));
        assert_eq!(i32_at(&[1, 2], 0), None);
    }

    #[test]
    fn a_length_past_the_limit_is_refused() {
        let mut frames = Frames::default();
        frames.push(&[STDOUT, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(frames.take(), Err(Oversized(u32::MAX)));
    }

    #[test]
    fn requests_are_told_from_the_keys_under_them() {
        assert_eq!(request_key("e1"), "data/runx/exec/e1");
        assert_eq!(request_of("data/runx/exec/e1"), Some("e1"));
        assert_eq!(request_of("data/runx/exec/e1/port"), None);
        assert_eq!(request_of("data/runx/exec"), None);
        assert_eq!(request_of("data/runx/execs/e1"), None);
        assert_eq!(port_key("e1"), "data/runx/exec/e1/port");
        assert_eq!(ring_ref_key("e1"), "data/runx/exec/e1/ring-ref");
    }
}
