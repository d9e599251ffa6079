//! The binaries that ship on the boards, built the way meta-runx builds them: linked statically
//! and not position-independent. A static non-PIE binary starts without the dynamic loader and
//! without relocating itself at every start, which is most of what a short `runx state` costs
//! under emulation (docs/benchmarks.md). CI's arm64 cross-build, the lab and the demo all use
//! this one build, so that no package selection or flag change rebuilds runx (LTO: minutes).

use std::path::PathBuf;

use anyhow::Result;

use crate::arch::Arch;
use crate::cmd;
use crate::progress::Step;
use crate::workspace;

const CRATES: &[&str] = &["runx", "runx-init", "runx-tools"];
const RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";

/// Where the built binaries are.
pub struct Shipped {
    dir: PathBuf,
}

impl Shipped {
    pub fn binary(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn triple(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-gnu",
        Arch::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// Builds the shipped crates for `arch` (release) into target/static/TRIPLE/release. A folder of
/// their own: in target/TRIPLE/ they would take turns with dynamic builds, each rebuilding the other.
pub fn build(arch: Arch) -> Result<Shipped> {
    let triple = triple(arch);
    let target_dir = workspace::root()?.join("target/static");
    let flags_var = format!("CARGO_TARGET_{}_RUSTFLAGS", triple.to_uppercase().replace('-', "_"));
    let step = Step::start(format!("building {} for {triple} (release, static)", CRATES.join(", ")));
    let mut cargo = cmd::cargo()?;
    cargo.args(["build", "--release", "--target", triple]).arg("--target-dir").arg(&target_dir);
    for krate in CRATES {
        cargo.args(["--package", krate]);
    }
    cmd::output(cargo.env(flags_var, RUSTFLAGS))?;
    step.done();
    Ok(Shipped { dir: target_dir.join(triple).join("release") })
}
