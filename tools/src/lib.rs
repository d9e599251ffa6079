//! runx-tools: what a board needs around the runtime: boot scripts for Xen (`boot`, `uimage`)
//! and OCI images (`oci_archive`, `kernel_image`: images that carry their own kernel). The xl
//! model (`runx-xl`) and the guest image writers (`runx-image`) are crates of their own, which
//! the runtime shares.

pub mod boot;
pub mod kernel_image;
pub mod oci_archive;
pub mod uimage;
