//! runx: the library behind the `runx` OCI runtime.
//!
//! The runtime turns an OCI bundle into a Xen domain driven through `xl`: `plan` decides the
//! domain, `container` runs the lifecycle on the `state` store and a `toolstack`, and the
//! `monitor` owns each domain while it runs. See `docs/design.md`.

pub mod annotations;
pub mod bundle;
pub mod confine;
pub mod console_ring;
pub mod container;
pub mod container_id;
pub mod guest_signal;
pub mod host_config;
pub mod launch;
pub mod log;
pub mod monitor;
pub mod plan;
pub mod profile;
pub mod state;
pub mod toolstack;
pub mod vm;
