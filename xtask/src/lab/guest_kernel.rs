//! The runx guest kernel, built in the lab from Debian's linux-source with
//! `make tinyconfig` plus the guest config fragments that meta-runx's kernel
//! recipe uses, so that both build the same kernel: a bzImage for x86_64 PV
//! guests, an arm64 `Image` (cross-compiled) for arm64 guests.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::cache::{Cache, Key};
use super::debs;
use crate::arch::Arch;
use crate::cmd;
use crate::progress::Step;

const SOURCE_PACKAGE: &str = "linux-source-6.1";
const COMMON: (&str, &str) =
    ("runx-guest.cfg", include_str!("../../../meta-runx/recipes-kernel/linux/linux-runx-guest/runx-guest.cfg"));
const X86: (&str, &str) =
    ("runx-guest-x86.cfg", include_str!("../../../meta-runx/recipes-kernel/linux/linux-runx-guest/runx-guest-x86.cfg"));

/// The fragments for `arch`, in merge order (as meta-runx's recipe adds them).
fn fragments(arch: Arch) -> &'static [(&'static str, &'static str)] {
    match arch {
        Arch::X86_64 => &[COMMON, X86],
        Arch::Arm64 => &[COMMON],
    }
}

/// How the kernel's make names `arch`, the cross compiler prefix, the image target and where
/// the build leaves it.
fn make_target(arch: Arch) -> (&'static str, Option<&'static str>, &'static str, &'static str) {
    match arch {
        Arch::X86_64 => ("x86", None, "bzImage", "arch/x86/boot/bzImage"),
        Arch::Arm64 => ("arm64", Some("aarch64-linux-gnu-"), "Image", "arch/arm64/boot/Image"),
    }
}

/// The options the fragments set that the final .config lacks (Kconfig dropped them).
fn missing_options(arch: Arch, config: &str) -> Vec<String> {
    let set: std::collections::HashSet<&str> = config.lines().collect();
    fragments(arch)
        .iter()
        .flat_map(|(_, text)| text.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_") && !set.contains(l))
        .map(str::to_owned)
        .collect()
}

/// Builds (or reuses) the guest kernel for `arch`; returns its bzImage (x86_64) or Image (arm64).
pub fn build(cache: &Cache, arch: Arch) -> Result<PathBuf> {
    // The source package is architecture-independent: one download serves both kernels.
    let debs = debs::fetch(cache, Arch::X86_64, &[SOURCE_PACKAGE.to_owned()])?;
    let (make_arch, cross, image, built) = make_target(arch);
    let mut key = Key::new("guest-kernel-v1");
    key.add(debs[0].file_name().expect("a file").as_encoded_bytes());
    if arch != Arch::X86_64 {
        key.add(make_arch);
    }
    for (name, text) in fragments(arch) {
        key.add(name).add(text);
    }
    let dir = cache.get_or_build(&format!("guest-kernel-{}", arch.name()), &key, |out| {
        let work = out.join("work");
        fs::create_dir_all(&work)?;
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(&debs[0]).arg(&work))?;
        let tarball = work.join(format!("usr/src/{SOURCE_PACKAGE}.tar.xz"));
        let step = Step::start("unpacking the kernel source");
        cmd::run(Command::new("tar").arg("-xf").arg(&tarball).arg("-C").arg(&work))?;
        step.done();
        let src = work.join(SOURCE_PACKAGE);
        for (name, text) in fragments(arch) {
            fs::write(src.join(name), text)?;
        }
        // The host builds its own architecture's kernel without ARCH: that is how the x86_64 one
        // always was built.
        let make_env = |cmd: &mut Command| {
            cmd.current_dir(&src);
            if let Some(prefix) = cross {
                cmd.env("ARCH", make_arch).env("CROSS_COMPILE", prefix);
            }
        };
        let make = |args: &[&str]| {
            let mut cmd = Command::new("make");
            make_env(cmd.args(args));
            cmd::output(&mut cmd).map(drop)
        };
        make(&["tinyconfig"])?;
        let mut merge = Command::new("scripts/kconfig/merge_config.sh");
        merge.args(["-m", ".config"]).args(fragments(arch).iter().map(|(name, _)| name));
        make_env(&mut merge);
        cmd::output(&mut merge)?;
        make(&["olddefconfig"])?;
        let config = fs::read_to_string(src.join(".config"))?;
        let missing = missing_options(arch, &config);
        if !missing.is_empty() {
            bail!(
                "the guest kernel config lost options the fragments set (a dependency is off): {}",
                missing.join(" ")
            );
        }
        let jobs = format!("-j{}", std::thread::available_parallelism().map_or(2, |n| n.get()));
        let step = Step::start(format!("compiling the {} guest kernel (tinyconfig + runx fragments)", arch.name()));
        make(&[&jobs, image])?;
        step.done();
        fs::copy(src.join(built), out.join("vmlinuz"))?;
        fs::copy(src.join(".config"), out.join("config"))?;
        fs::remove_dir_all(&work).context("cannot remove the kernel build tree")
    })?;
    Ok(dir.join("vmlinuz"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_options_kconfig_dropped() {
        for arch in Arch::ALL {
            let full: String = fragments(arch).iter().map(|(_, t)| *t).collect::<Vec<_>>().join("\n");
            assert!(missing_options(arch, &full).is_empty());
            let without_ext4 = full.replace("CONFIG_EXT4_FS=y", "# CONFIG_EXT4_FS is not set");
            assert_eq!(missing_options(arch, &without_ext4), ["CONFIG_EXT4_FS=y"]);
        }
        // x86's PV options are not asked of the arm64 kernel.
        assert!(!fragments(Arch::Arm64).iter().any(|(_, t)| t.contains("CONFIG_XEN_PV=y")));
    }
}
