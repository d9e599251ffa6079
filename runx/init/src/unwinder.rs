//! The unwinder's entry points, for a static musl build that aborts on panic (docs/guest.md):
//! defined here, they keep LLVM's libunwind, and std's backtrace symbolizer that only its
//! `_Unwind_Backtrace` calls into, out of runx-init. Nothing unwinds a `panic = "abort"` build,
//! and the shipped one has no `.eh_frame_hdr`, without which libunwind finds no frame anyway.

use std::ffi::{c_int, c_void};
use std::process::abort;

/// libunwind's `_URC_END_OF_STACK`.
const END_OF_STACK: c_int = 5;

/// Walks no frame: std's panic message then says `stack backtrace:` and lists none, as it did
/// with libunwind and no `.eh_frame_hdr`.
#[no_mangle]
pub extern "C" fn _Unwind_Backtrace(_trace: *mut c_void, _argument: *mut c_void) -> c_int {
    END_OF_STACK
}

// The rest run only while a panic unwinds, which never happens here.

#[no_mangle]
pub extern "C" fn _Unwind_Resume(_exception: *mut c_void) -> ! {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetIP(_context: *mut c_void) -> usize {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetIPInfo(_context: *mut c_void, _before_instruction: *mut c_int) -> usize {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_SetIP(_context: *mut c_void, _ip: usize) {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_SetGR(_context: *mut c_void, _register: c_int, _value: usize) {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetLanguageSpecificData(_context: *mut c_void) -> *mut c_void {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetRegionStart(_context: *mut c_void) -> usize {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetTextRelBase(_context: *mut c_void) -> usize {
    abort()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetDataRelBase(_context: *mut c_void) -> usize {
    abort()
}
