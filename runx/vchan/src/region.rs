//! The memory behind an endpoint: shared mappings of a device's pages (gntalloc's, gntdev's, or
//! a memfd's in the tests), unmapped on drop, and which of them holds each ring.
//!
//! The device's descriptor can be closed once its pages are mapped: each mapping holds the
//! file, and the kernel tears the grants down (and fires any unmap notification) when the last
//! mapping goes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use crate::layout::{self, Orders};

/// One `mmap` of shared pages.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a mapping is plain memory, usable from any thread.
unsafe impl Send for Region {}

impl Region {
    /// Maps `len` bytes of `fd` at `offset`, shared, with `prot`.
    pub(crate) fn map(fd: BorrowedFd, len: usize, prot: libc::c_int, offset: u64) -> io::Result<Region> {
        let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a new mapping at an address the kernel picks; nothing else refers to it.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), offset) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast()).map(|ptr| Region { ptr, len }).ok_or_else(|| io::Error::from(io::ErrorKind::Other))
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping is this region's own; nothing refers to it after the drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The shared page and the rings' own pages (for orders of 12 and up), and where each ring's
/// bytes are in them.
pub(crate) struct Memory {
    // Dropped in this order: the rings' pages, then the shared page, as libxenvchan unmaps.
    _left: Option<Region>,
    _right: Option<Region>,
    page: Region,
    left_ring: *mut u8,
    right_ring: *mut u8,
}

impl Memory {
    /// Checks that each ring too large for the shared page has a mapping, large enough, and
    /// that each one that fits there has none.
    pub(crate) fn new(page: Region, left: Option<Region>, right: Option<Region>, orders: Orders) -> io::Result<Memory> {
        let ring = |mapping: &Option<Region>, order| match (layout::in_page_offset(order), mapping) {
            // SAFETY: inside the shared page, whose size is checked below.
            (Some(offset), None) => Some(unsafe { page.as_ptr().add(offset) }),
            (None, Some(mapping)) if mapping.len >= 1 << order => Some(mapping.as_ptr()),
            _ => None,
        };
        match (ring(&left, orders.left), ring(&right, orders.right)) {
            (Some(left_ring), Some(right_ring)) if page.len >= layout::PAGE_SIZE => {
                Ok(Memory { _left: left, _right: right, page, left_ring, right_ring })
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "vchan: ring mappings do not match the orders")),
        }
    }

    pub(crate) fn page(&self) -> *mut u8 {
        self.page.as_ptr()
    }

    /// Where the left ring's bytes are (client to server).
    pub(crate) fn left_ring(&self) -> *mut u8 {
        self.left_ring
    }

    /// Where the right ring's bytes are (server to client).
    pub(crate) fn right_ring(&self) -> *mut u8 {
        self.right_ring
    }
}
