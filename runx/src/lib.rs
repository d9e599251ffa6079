//! runx: the library behind the `runx` OCI runtime.
//!
//! The runtime turns an OCI bundle into a Xen domain driven through `xl`.
//! Modules arrive one concern at a time; see `docs/design.md`.

pub mod container_id;
