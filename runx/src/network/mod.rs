//! The container's network. The engine (CNI through containerd, CRI, podman) sets it up in a
//! network namespace; runx keeps the container's monitor, the process the engine knows as the
//! container's, in that namespace (docs/network.md).

mod namespace;

pub use namespace::{NamespaceError, NetworkNamespace};
