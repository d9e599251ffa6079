//! runx: the library behind the `runx` OCI runtime.
//!
//! The runtime turns an OCI bundle into a Xen domain driven through `xl`: `plan` decides the
//! domain, `container` runs the lifecycle on the `state` store and `xen` (everything runx asks
//! of Xen, behind one trait), and the `monitor` owns each domain while it runs. See
//! `docs/design.md`.

pub mod annotations;
pub mod bundle;
pub mod confine;
pub mod container;
pub mod container_id;
pub mod exec;
pub mod guest_kind;
pub mod guest_memory;
pub mod home;
pub mod host_config;
pub mod launch;
pub mod log;
pub mod monitor;
pub mod network;
pub mod plan;
pub mod profile;
pub mod state;
pub mod stats;
pub mod update;
pub mod vm;
pub mod xen;

/// The newest runtime-spec version runx implements (`runx features`, `runx --version`), as a
/// literal so that `concat!` can use it.
#[macro_export]
macro_rules! spec_version {
    () => {
        "1.2.0"
    };
}
