//! The binaries that ship on the boards, built the way meta-runx builds them: linked statically
//! and not position-independent. A static non-PIE binary starts without the dynamic loader and
//! without relocating itself at every start, which is most of what a short `runx state` costs
//! under emulation (docs/benchmarks.md). CI's arm64 cross-build, the lab and the demo all use
//! this one build, so that no package selection or flag change rebuilds runx (LTO: minutes).
//!
//! runx-init, the guest's PID 1, is built on its own: against musl (static glibc alone weighs
//! more than the 512 KiB runx-init must fit in) with the workspace's `guest` profile, and
//! checked against that bound (docs/guest.md).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};

use crate::arch::Arch;
use crate::cmd;
use crate::progress::Step;
use crate::workspace;

const CRATES: &[&str] = &["runx", "runx-tools"];
const RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";
/// runx-init's layout, on top of RUSTFLAGS (docs/guest.md): code and read-only data share pages
/// (`noseparate-code`), no unwind index (`--no-eh-frame-hdr`: a guest's PID 1 aborts on panic
/// and prints no backtrace), and no RELRO segment (which static musl never applies).
const INIT_LINK_FLAGS: &str =
    "-C link-arg=-Wl,-z,noseparate-code -C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-Wl,-z,norelro";
/// The linker script, relative to the workspace, that drops runx-init's unwind tables: without
/// the index above, nothing reads them.
const INIT_LINKER_SCRIPT: &str = "runx/init/no-unwind-tables.ld";
const INIT: &str = "runx-init";
const INIT_PROFILE: &str = "guest";
/// The most runx-init may weigh: it is the whole base initramfs, read by every guest's boot.
pub const INIT_MAX_BYTES: u64 = 512 * 1024;

/// Where the built binaries are.
pub struct Shipped {
    dir: PathBuf,
    init: PathBuf,
}

impl Shipped {
    pub fn binary(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// runx-init, the guest's PID 1.
    pub fn init(&self) -> &Path {
        &self.init
    }
}

fn triple(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-gnu",
        Arch::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

fn init_triple(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-musl",
        Arch::Arm64 => "aarch64-unknown-linux-musl",
    }
}

/// `cargo build` of `crates` for `triple` with the shipped flags, into `target_dir`.
fn cargo_build(target_dir: &Path, triple: &str, profile: &str, crates: &[&str], rustflags: &str) -> Result<()> {
    let flags_var = format!("CARGO_TARGET_{}_RUSTFLAGS", triple.to_uppercase().replace('-', "_"));
    let step = Step::start(format!("building {} for {triple} ({profile}, static)", crates.join(", ")));
    let mut cargo = cmd::cargo()?;
    cargo.args(["build", "--profile", profile, "--target", triple]).arg("--target-dir").arg(target_dir);
    for krate in crates {
        cargo.args(["--package", krate]);
    }
    cmd::output(cargo.env(flags_var, rustflags))?;
    step.done();
    Ok(())
}

/// Fails when runx-init has outgrown INIT_MAX_BYTES.
fn check_init_size(init: &Path, size: u64) -> Result<()> {
    ensure!(
        size <= INIT_MAX_BYTES,
        "{} is {size} bytes, over the {INIT_MAX_BYTES} (512 KiB) runx-init must fit in: see what grew with \
         `nm --size-sort -S` on an unstripped build, and docs/guest.md for what it links and why",
        init.display()
    );
    Ok(())
}

/// Builds the shipped crates for `arch` into target/static/TRIPLE/PROFILE (release; runx-init:
/// musl, guest), and checks runx-init's size. A folder of their own: in target/TRIPLE/ they
/// would take turns with dynamic builds, each rebuilding the other.
pub fn build(arch: Arch) -> Result<Shipped> {
    let root = workspace::root()?;
    let target_dir = root.join("target/static");
    cargo_build(&target_dir, triple(arch), "release", CRATES, RUSTFLAGS)?;
    let script = root.join(INIT_LINKER_SCRIPT);
    // Cargo splits the flags at whitespace.
    ensure!(!script.to_string_lossy().contains(char::is_whitespace), "{}: a path with spaces", script.display());
    let init_flags = format!("{RUSTFLAGS} {INIT_LINK_FLAGS} -C link-arg=-Wl,-T,{}", script.display());
    cargo_build(&target_dir, init_triple(arch), INIT_PROFILE, &[INIT], &init_flags)?;
    let init = target_dir.join(init_triple(arch)).join(INIT_PROFILE).join(INIT);
    check_init_size(&init, fs::metadata(&init)?.len())?;
    Ok(Shipped { dir: target_dir.join(triple(arch)).join("release"), init })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_init_over_512_kib() {
        let init = Path::new("runx-init");
        assert!(check_init_size(init, 512 * 1024).is_ok());
        let err = check_init_size(init, 512 * 1024 + 1).unwrap_err().to_string();
        assert!(err.contains("runx-init is 524289 bytes, over the 524288 (512 KiB)"), "{err}");
    }
}
