//! What the three Xen devices share: opening one, its ioctls and mappings, with errors that
//! name the device, the call and, when the device is missing, the kernel option it needs.
//!
//! The ioctl numbers are Linux's `_IOC(_IOC_NONE, type, nr, size)` as x86 and arm64 encode it
//! (direction 0 in the top bits, the size from bit 16, the type from bit 8); the argument
//! structs mirror the UAPI headers (`include/uapi/xen/{evtchn,gntalloc,gntdev}.h`) and their
//! sizes, which the numbers carry, are asserted at compile time.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::region::Region;

/// `_IOC(_IOC_NONE, ty, nr, size)`.
pub(crate) const fn ioc(ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < 1 << 14);
    (size as u32) << 16 | (ty as u32) << 8 | nr as u32
}

/// `struct ioctl_gntalloc_unmap_notify` and `struct ioctl_gntdev_unmap_notify`, which are the
/// same: what the kernel does when a shared page is unmapped.
#[repr(C)]
pub(crate) struct UnmapNotify {
    /// The byte to clear, as an offset into the device (the mapping's index plus the byte's
    /// offset in its pages).
    pub index: u64,
    pub action: u32,
    pub event_channel_port: u32,
}
const _: () = assert!(std::mem::size_of::<UnmapNotify>() == 16);

pub(crate) const UNMAP_NOTIFY_CLEAR_BYTE: u32 = 0x1;
pub(crate) const UNMAP_NOTIFY_SEND_EVENT: u32 = 0x2;

/// An open `/dev/xen/*` device.
pub(crate) struct Device {
    fd: OwnedFd,
    path: &'static str,
}

impl Device {
    /// Opens `path` read-write, close-on-exec, with `flags`; `missing` is the fix to name when
    /// it is not there.
    pub(crate) fn open(path: &'static str, flags: libc::c_int, missing: &str) -> io::Result<Device> {
        match OpenOptions::new().read(true).write(true).custom_flags(flags).open(path) {
            Ok(file) => Ok(Device { fd: file.into(), path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(io::Error::new(e.kind(), format!("{path}: {e}: {missing}")))
            }
            Err(e) => Err(error(path, "open", e)),
        }
    }

    /// Calls ioctl `request` (named `name` in errors) with `arg`, and returns what it returned.
    ///
    /// # Safety
    /// `arg` is the struct `request` takes, with any variable-length tail the kernel reads or
    /// writes inside it.
    pub(crate) unsafe fn ioctl<T>(&self, name: &str, request: u32, arg: &mut T) -> io::Result<libc::c_int> {
        let ret = libc::ioctl(self.fd.as_raw_fd(), request as libc::Ioctl, arg as *mut T);
        if ret < 0 {
            Err(self.error(name, io::Error::last_os_error()))
        } else {
            Ok(ret)
        }
    }

    /// Maps `len` bytes of the device at `offset`.
    pub(crate) fn map(&self, len: usize, prot: libc::c_int, offset: u64) -> io::Result<Region> {
        Region::map(self.fd.as_fd(), len, prot, offset).map_err(|e| self.error("mmap", e))
    }

    /// `error` for this device.
    pub(crate) fn error(&self, what: &str, e: io::Error) -> io::Error {
        error(self.path, what, e)
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `e`, saying which device and which call.
fn error(path: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{path}: {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_linuxs() {
        // IOCTL_EVTCHN_NOTIFY, IOCTL_GNTDEV_MAP_GRANT_REF, IOCTL_GNTALLOC_SET_UNMAP_NOTIFY as
        // the C macros expand on x86_64 and arm64.
        assert_eq!(ioc(b'E', 4, 4), 0x0004_4504);
        assert_eq!(ioc(b'G', 0, 24), 0x0018_4700);
        assert_eq!(ioc(b'G', 7, 16), 0x0010_4707);
    }

    #[test]
    fn a_missing_device_names_the_fix() {
        let e = Device::open("/nonexistent/xen/evtchn", 0, "the kernel needs CONFIG_X").err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("/nonexistent/xen/evtchn: "), "{e}");
        assert!(e.to_string().ends_with(": the kernel needs CONFIG_X"), "{e}");
    }
}
