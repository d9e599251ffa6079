//! vcpus the host brings back online (`runx update`, `xl vcpu-set`). The kernel's Xen driver
//! takes a vcpu the host sets offline down by itself, but one set online it only makes present
//! again: onlining it is left to user space (a udev rule elsewhere), so PID 1 does it.

use nix::poll::{poll, PollTimeout};
use runx_xenstore::Xenstore;

/// The guest's xenstore keys the host writes: `cpu/N/availability`, `online` or `offline`.
pub const KEYS: &str = "cpu";

/// Onlines the vcpu whose availability key changed to `online`.
pub fn follow(store: &mut Xenstore, path: &str) {
    let Some(n) = path.strip_prefix("cpu/").and_then(|rest| rest.strip_suffix("/availability")) else { return };
    if n.parse::<u32>().is_err() || store.read(path).ok().flatten().as_deref() != Some("online") {
        return;
    }
    // The kernel's own watch makes the vcpu present; it may not have run yet.
    let online = ["/sys/devices/system/cpu/cpu", n, "/online"].concat();
    for _ in 0..50 {
        if std::fs::write(&online, "1").is_ok() {
            return;
        }
        let _ = poll(&mut [], PollTimeout::from(20u8));
    }
    eprintln!("runx-init: vcpu {n}: the host set it online, but {online} did not take 1");
}
