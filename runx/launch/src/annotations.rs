//! The names of the OCI annotations (and image labels) runx reads, all under one prefix: what an
//! image built by `runx-tools image` carries and what the runtime reads, named once. Which of them
//! a container may set is the runtime's host config's decision.

/// The prefix of every annotation and label runx reads.
pub const PREFIX: &str = "io.runx.";
/// A kernel inside the container's rootfs to boot instead of the host's guest kernel.
pub const KERNEL: &str = "io.runx.kernel";
/// Its ramdisk, inside the rootfs.
pub const RAMDISK: &str = "io.runx.ramdisk";
/// RunX's environment variables for the same two paths.
pub const ENV_KERNEL: &str = "RUNX_KERNEL";
pub const ENV_RAMDISK: &str = "RUNX_RAMDISK";
/// `initramfs` or `disk`: how the root reaches the guest.
pub const ROOTFS: &str = "io.runx.rootfs";
/// Guest memory in MiB.
pub const MEMORY: &str = "io.runx.memory";
/// Guest vcpus.
pub const VCPUS: &str = "io.runx.vcpus";
/// Named profiles (comma-separated) from the host's `profiles_dir`.
pub const PROFILE: &str = "io.runx.profile";
/// `vif` or `none`: whether a guest in a network namespace gets a vif wired to it (runx-init
/// guests do by default, containers with their own kernel do not).
pub const NETWORK: &str = "io.runx.network";

/// Every annotation runx knows.
pub const ALL: &[&str] = &[KERNEL, RAMDISK, ROOTFS, MEMORY, VCPUS, PROFILE, NETWORK];
