//! `/dev/xen/evtchn`: the event channel a vchan's sides kick each other through. The server
//! (guest) binds a fresh port the peer domain may connect to; the client (dom0) binds to that.
//!
//! The descriptor is non-blocking and polls readable while an event is pending: reading takes
//! the pending port (4 bytes) and leaves it masked, writing the port back unmasks it for the
//! next event. Closing the descriptor unbinds the port.

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;

use crate::notify::Notify;
use crate::sys::{ioc, Device};

const PATH: &str = "/dev/xen/evtchn";
const MISSING: &str = "the kernel needs CONFIG_XEN_DEV_EVTCHN (module xen-evtchn), and /dev a devtmpfs";

/// `struct ioctl_evtchn_bind_interdomain`.
#[repr(C)]
struct BindInterdomain {
    remote_domain: u32,
    remote_port: u32,
}

/// `struct ioctl_evtchn_bind_unbound_port`.
#[repr(C)]
struct BindUnboundPort {
    remote_domain: u32,
}

/// `struct ioctl_evtchn_notify`.
#[repr(C)]
struct PortArg {
    port: u32,
}

const _: () = assert!(size_of::<BindInterdomain>() == 8);
const _: () = assert!(size_of::<BindUnboundPort>() == 4);
const _: () = assert!(size_of::<PortArg>() == 4);

const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 = ioc(b'E', 1, size_of::<BindInterdomain>());
const IOCTL_EVTCHN_BIND_UNBOUND_PORT: u32 = ioc(b'E', 2, size_of::<BindUnboundPort>());
const IOCTL_EVTCHN_NOTIFY: u32 = ioc(b'E', 4, size_of::<PortArg>());

/// A bound event channel port.
pub struct EventChannel {
    device: Device,
    port: u32,
}

impl EventChannel {
    /// Allocates a port that `remote_domid` can bind to (the server's side).
    pub(crate) fn bind_unbound(remote_domid: u16) -> io::Result<EventChannel> {
        let device = open()?;
        let mut bind = BindUnboundPort { remote_domain: remote_domid.into() };
        // SAFETY: the argument IOCTL_EVTCHN_BIND_UNBOUND_PORT takes.
        let port =
            unsafe { device.ioctl("IOCTL_EVTCHN_BIND_UNBOUND_PORT", IOCTL_EVTCHN_BIND_UNBOUND_PORT, &mut bind) }?;
        EventChannel::bound(device, port)
    }

    /// Binds to `remote_port`, which `remote_domid` allocated for this domain (the client's).
    pub(crate) fn bind_interdomain(remote_domid: u16, remote_port: u32) -> io::Result<EventChannel> {
        let device = open()?;
        let mut bind = BindInterdomain { remote_domain: remote_domid.into(), remote_port };
        // SAFETY: the argument IOCTL_EVTCHN_BIND_INTERDOMAIN takes.
        let port = unsafe { device.ioctl("IOCTL_EVTCHN_BIND_INTERDOMAIN", IOCTL_EVTCHN_BIND_INTERDOMAIN, &mut bind) }?;
        EventChannel::bound(device, port)
    }

    /// The port the kernel returned, unmasked as libxenvchan does after binding.
    fn bound(device: Device, port: libc::c_int) -> io::Result<EventChannel> {
        let channel = EventChannel { device, port: port as u32 };
        channel.unmask(channel.port)?;
        Ok(channel)
    }

    /// This side's port number.
    pub(crate) fn port(&self) -> u32 {
        self.port
    }

    fn unmask(&self, port: u32) -> io::Result<()> {
        // SAFETY: 4 bytes from a u32.
        let written = unsafe { libc::write(self.device.raw_fd(), (&port as *const u32).cast(), 4) };
        match written {
            4 => Ok(()),
            0.. => Err(self.device.error("unmask", io::ErrorKind::WriteZero.into())),
            _ => Err(self.device.error("unmask", io::Error::last_os_error())),
        }
    }
}

impl Notify for EventChannel {
    fn notify(&self) -> io::Result<()> {
        let mut notify = PortArg { port: self.port };
        // SAFETY: the argument IOCTL_EVTCHN_NOTIFY takes.
        unsafe { self.device.ioctl("IOCTL_EVTCHN_NOTIFY", IOCTL_EVTCHN_NOTIFY, &mut notify) }.map(drop)
    }

    fn take(&self) -> io::Result<bool> {
        let mut port = 0u32;
        loop {
            // SAFETY: 4 bytes into a u32.
            let read = unsafe { libc::read(self.device.raw_fd(), (&mut port as *mut u32).cast(), 4) };
            match read {
                4 => return self.unmask(port).map(|()| true),
                0.. => return Err(self.device.error("read", io::ErrorKind::UnexpectedEof.into())),
                _ => {}
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock => return Ok(false),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(self.device.error("read", error)),
            }
        }
    }

    fn fd(&self) -> RawFd {
        self.device.raw_fd()
    }
}

fn open() -> io::Result<Device> {
    Device::open(PATH, libc::O_NONBLOCK, MISSING)
}
