//! runx-tools: what a board needs around the runtime: u-boot script images,
//! guest initramfs archives, and (later) xl templates and kernel images.

pub mod cpio;
pub mod hex;
pub mod oci_archive;
pub mod uimage;
