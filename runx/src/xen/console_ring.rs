//! A read-only view of a guest's PV console ring (`struct xencons_interface` of Xen's
//! public/io/console.h), mapped from dom0 through privcmd. The monitor takes the guest's output
//! from xenconsoled's pty; before it destroys a guest that has ended, it waits until xenconsoled
//! has emptied the ring, because destroying the domain drops what is still in it, and under load
//! xenconsoled can lag behind any fixed quiet time.

use std::fs::{File, OpenOptions};
use std::num::NonZeroUsize;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

const PAGE: usize = 4096;
/// Offsets of `out_cons` and `out_prod` in the ring page.
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;
const PRIVCMD: &str = "/dev/xen/privcmd";

/// `struct privcmd_mmapbatch_v2` of Linux's include/uapi/xen/privcmd.h.
#[repr(C)]
struct MmapBatchV2 {
    num: u32,
    dom: u16,
    addr: u64,
    arr: *const u64,
    err: *mut i32,
}

// IOCTL_PRIVCMD_MMAPBATCH_V2 = _IOC(_IOC_NONE, 'P', 4, sizeof(struct privcmd_mmapbatch_v2)).
nix::ioctl_readwrite_bad!(
    privcmd_mmapbatch_v2,
    (std::mem::size_of::<MmapBatchV2>() << 16) | ((b'P' as usize) << 8) | 4,
    MmapBatchV2
);

pub struct PrivcmdRing {
    page: NonNull<std::ffi::c_void>,
    _privcmd: File,
}

impl PrivcmdRing {
    /// Maps the ring page `frame` (xenstore's `console/ring-ref`: a machine frame for PV
    /// guests, a guest frame otherwise) of domain `domid`.
    pub fn map(domid: u32, frame: u64) -> std::io::Result<Self> {
        let dom = u16::try_from(domid).map_err(|_| std::io::Error::other("domid out of range"))?;
        let privcmd = OpenOptions::new().read(true).write(true).open(PRIVCMD)?;
        let length = NonZeroUsize::new(PAGE).expect("a page is not empty");
        // SAFETY: a fresh shared mapping of privcmd, which only the ioctl below fills.
        let page = unsafe { mmap(None, length, ProtFlags::PROT_READ, MapFlags::MAP_SHARED, &privcmd, 0) }?;
        let ring = PrivcmdRing { page, _privcmd: privcmd };
        let frames = [frame];
        let mut err = 0i32;
        let mut batch = MmapBatchV2 { num: 1, dom, addr: page.as_ptr() as u64, arr: frames.as_ptr(), err: &mut err };
        // SAFETY: `batch` points at live memory for the call; the kernel maps one page at `addr`,
        // which is ours.
        unsafe { privcmd_mmapbatch_v2(ring._privcmd.as_raw_fd(), &mut batch) }?;
        if err != 0 {
            return Err(std::io::Error::from_raw_os_error(-err));
        }
        Ok(ring)
    }
}

impl super::ConsoleRing for PrivcmdRing {
    /// Bytes the guest wrote that xenconsoled has not taken yet.
    fn unread(&self) -> u32 {
        let base = self.page.as_ptr().cast::<u8>();
        // SAFETY: both offsets lie in the mapped page; the guest and xenconsoled change them, so
        // each read is volatile.
        let (cons, prod) = unsafe {
            (
                std::ptr::read_volatile(base.add(OUT_CONS).cast::<u32>()),
                std::ptr::read_volatile(base.add(OUT_PROD).cast::<u32>()),
            )
        };
        prod.wrapping_sub(cons)
    }
}

impl Drop for PrivcmdRing {
    fn drop(&mut self) {
        // SAFETY: the page was mapped by `map` and nothing refers to it any more.
        let _ = unsafe { munmap(self.page, PAGE) };
    }
}
