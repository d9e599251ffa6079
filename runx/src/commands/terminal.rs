//! The terminal runx gives a process that has one: a pty whose master goes to the engine over
//! `--console-socket`, as runc sends it, and whose slave becomes the monitor's stdio.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Opens a pty, sends its master over the console socket (as runc does) and returns the slave,
/// which becomes the monitor's stdio.
pub fn send_terminal(socket: &Path) -> Result<OwnedFd> {
    let pty = nix::pty::openpty(None, None).context("cannot open a pty for the container's terminal")?;
    // The guest's own console does the terminal's line discipline; this one only carries bytes.
    let mut attrs = nix::sys::termios::tcgetattr(&pty.slave).context("cannot read the pty's settings")?;
    nix::sys::termios::cfmakeraw(&mut attrs);
    nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &attrs)
        .context("cannot make the pty raw")?;
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to the console socket {}", socket.display()))?;
    let fds = [pty.master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .with_context(|| format!("cannot send the terminal over {}", socket.display()))?;
    Ok(pty.slave)
}
