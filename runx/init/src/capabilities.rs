//! The process's capability sets, applied as runc does: the bounding set shrunk while runx-init
//! is still root with every capability, the permitted set kept through the change of user, then
//! effective, permitted and inheritable set at once, and the ambient set raised last.

use nix::errno::Errno;
use nix::libc;
use runx_launch::Capabilities;

use crate::Failure;

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the prctl options used here take integers only.
    Errno::result(unsafe { libc::prctl(option, arg, 0, 0, 0) }).map(drop)
}

/// Before the change of user: drops every capability the bounding set does not name.
pub fn limit_bounding(caps: &Capabilities) -> Result<(), Failure> {
    let sys = |what: &str, e: Errno| Failure::sys(&format!("capabilities: {what}"), e);
    for cap in 0..64 {
        if caps.bounding & 1 << cap == 0 {
            match prctl(libc::PR_CAPBSET_DROP, cap) {
                // Past the guest kernel's last capability.
                Err(Errno::EINVAL) => break,
                result => result.map_err(|e| sys(&format!("drop capability {cap} from the bounding set"), e))?,
            }
        }
    }
    // The change to a user other than root would clear the permitted set.
    prctl(libc::PR_SET_KEEPCAPS, 1).map_err(|e| sys("keep them through the change of user", e))
}

/// After the change of user: the process's sets exactly as given.
pub fn apply(caps: &Capabilities) -> Result<(), Failure> {
    // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
    let header: [u32; 2] = [0x2008_0522, 0];
    let word = |set: u64, high: bool| (if high { set >> 32 } else { set }) as u32;
    let mut data = [0u32; 6];
    for (i, high) in [(0, false), (3, true)] {
        data[i] = word(caps.effective, high);
        data[i + 1] = word(caps.permitted, high);
        data[i + 2] = word(caps.inheritable, high);
    }
    // SAFETY: capset reads the header and two data structs of three words each.
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) })
        .map_err(|e| Failure::sys("capabilities: set effective, permitted and inheritable", e))?;
    prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong)
        .map_err(|e| Failure::sys("capabilities: clear the ambient set", e))?;
    for cap in (0..64).filter(|cap| caps.ambient & 1 << cap != 0) {
        // As runc: an ambient capability the kernel refuses (not permitted and inheritable) is
        // left out, not an error.
        // SAFETY: PR_CAP_AMBIENT_RAISE takes integers only.
        unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0) };
    }
    Ok(())
}
