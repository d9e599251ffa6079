//! One direction of a vchan: a power-of-two byte ring and its two indexes in the shared page.
//!
//! The indexes are free-running byte counts that wrap over all of `u32`, masked into the ring
//! only to address it. The peer can write anything into them, so an amount larger than the
//! ring reads as nothing to do (the ring locks up, as in libxenvchan) and every copy stays
//! inside the ring whatever the indexes say.
//!
//! The ordering is libxenvchan's barriers as acquire/release: the reader loads `prod` (acquire)
//! before it reads the bytes and publishes `cons` (release) after; the writer loads `cons`
//! (acquire) before it overwrites bytes and publishes `prod` (release) after it wrote them.

use std::ptr;
use std::sync::atomic::Ordering;

use crate::layout::RingShared;

pub(crate) struct Ring {
    indexes: *const RingShared,
    buffer: *mut u8,
    size: u32,
}

impl Ring {
    /// # Safety
    /// `indexes`, and `buffer` for `1 << order` bytes, stay mapped as long as the ring is used.
    pub(crate) unsafe fn new(indexes: *const RingShared, buffer: *mut u8, order: u8) -> Ring {
        Ring { indexes, buffer, size: 1 << order }
    }

    fn indexes(&self) -> &RingShared {
        // SAFETY: mapped while the ring is used (`new`'s contract).
        unsafe { &*self.indexes }
    }

    /// The bytes written and not yet read, for the reader.
    pub(crate) fn ready(&self) -> usize {
        let prod = self.indexes().prod.load(Ordering::Acquire);
        let cons = self.indexes().cons.load(Ordering::Relaxed);
        let ready = prod.wrapping_sub(cons);
        if ready > self.size {
            0
        } else {
            ready as usize
        }
    }

    /// The bytes that can be written without overwriting unread ones, for the writer.
    pub(crate) fn space(&self) -> usize {
        let cons = self.indexes().cons.load(Ordering::Acquire);
        let prod = self.indexes().prod.load(Ordering::Relaxed);
        let used = prod.wrapping_sub(cons);
        if used > self.size {
            0
        } else {
            (self.size - used) as usize
        }
    }

    /// Appends `data`, which the caller has checked fits (`space`), and publishes it.
    pub(crate) fn push(&self, data: &[u8]) {
        let data = &data[..data.len().min(self.size as usize)];
        let prod = self.indexes().prod.load(Ordering::Relaxed);
        let at = (prod & (self.size - 1)) as usize;
        let first = data.len().min(self.size as usize - at);
        // SAFETY: `at + first` and `data.len() - first` are both at most the ring's size, and
        // the ring is mapped (`new`); the peer does not touch these bytes until `prod` moves.
        unsafe {
            ptr::copy_nonoverlapping(data.as_ptr(), self.buffer.add(at), first);
            ptr::copy_nonoverlapping(data.as_ptr().add(first), self.buffer, data.len() - first);
        }
        self.indexes().prod.store(prod.wrapping_add(data.len() as u32), Ordering::Release);
    }

    /// Takes `out.len()` bytes, which the caller has checked are there (`ready`), and frees
    /// their room.
    pub(crate) fn pull(&self, out: &mut [u8]) {
        let len = out.len().min(self.size as usize);
        let out = &mut out[..len];
        let cons = self.indexes().cons.load(Ordering::Relaxed);
        let at = (cons & (self.size - 1)) as usize;
        let first = len.min(self.size as usize - at);
        // SAFETY: as in `push`; the peer does not overwrite these bytes until `cons` moves.
        unsafe {
            ptr::copy_nonoverlapping(self.buffer.add(at), out.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(self.buffer, out.as_mut_ptr().add(first), len - first);
        }
        self.indexes().cons.store(cons.wrapping_add(len as u32), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A ring of order 4 (16 bytes) over local memory, its indexes starting at `start`.
    fn ring(start: u32, indexes: &RingShared, buffer: &mut [u8; 16]) -> Ring {
        indexes.cons.store(start, Ordering::Relaxed);
        indexes.prod.store(start, Ordering::Relaxed);
        // SAFETY: both outlive the ring in each test.
        unsafe { Ring::new(indexes, buffer.as_mut_ptr(), 4) }
    }

    fn indexes() -> RingShared {
        RingShared { cons: AtomicU32::new(0), prod: AtomicU32::new(0) }
    }

    #[test]
    fn indexes_wrap_past_the_ring_and_past_u32() {
        let shared = indexes();
        let mut buffer = [0; 16];
        let ring = ring(u32::MAX - 20, &shared, &mut buffer);
        let mut sent = 0u8;
        let mut expect = 0u8;
        // 7-byte chunks: every few rounds cross the ring's end, and the indexes cross u32::MAX.
        for _ in 0..10 {
            let chunk: Vec<u8> = (0..7).map(|i| sent.wrapping_add(i)).collect();
            sent = sent.wrapping_add(7);
            assert_eq!(ring.space(), 16);
            ring.push(&chunk);
            assert_eq!((ring.ready(), ring.space()), (7, 9));
            let mut out = [0; 7];
            ring.pull(&mut out);
            for byte in out {
                assert_eq!(byte, expect);
                expect = expect.wrapping_add(1);
            }
        }
        assert!(shared.prod.load(Ordering::Relaxed) < 100, "the indexes wrapped");
        assert_eq!(shared.prod.load(Ordering::Relaxed), shared.cons.load(Ordering::Relaxed));
    }

    #[test]
    fn a_full_ring_straddling_u32_max_reads_back_whole() {
        let shared = indexes();
        let mut buffer = [0; 16];
        let ring = ring(u32::MAX - 5, &shared, &mut buffer);
        let data: Vec<u8> = (100..116).collect();
        ring.push(&data);
        assert_eq!((ring.ready(), ring.space()), (16, 0));
        let mut out = [0; 16];
        ring.pull(&mut out);
        assert_eq!(&out[..], &data[..]);
    }

    #[test]
    fn indexes_further_apart_than_the_ring_read_as_nothing_to_do() {
        let shared = indexes();
        let mut buffer = [0; 16];
        let ring = ring(0, &shared, &mut buffer);
        shared.prod.store(17, Ordering::Relaxed);
        assert_eq!((ring.ready(), ring.space()), (0, 0));
        shared.prod.store(u32::MAX, Ordering::Relaxed);
        assert_eq!((ring.ready(), ring.space()), (0, 0));
    }
}
