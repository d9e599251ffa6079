//! The runx guest kernel, built in the lab from Debian's linux-source with
//! `make tinyconfig` plus the guest config fragments that meta-runx's kernel
//! recipe uses, so that both build the same kernel.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::cache::{Cache, Key};
use super::progress::Step;
use super::{debs, Arch};
use crate::cmd;

const SOURCE_PACKAGE: &str = "linux-source-6.1";
const FRAGMENTS: &[(&str, &str)] = &[
    ("runx-guest.cfg", include_str!("../../../meta-runx/recipes-kernel/linux/linux-runx-guest/runx-guest.cfg")),
    ("runx-guest-x86.cfg", include_str!("../../../meta-runx/recipes-kernel/linux/linux-runx-guest/runx-guest-x86.cfg")),
];

/// The options the fragments set that the final .config lacks (Kconfig dropped them).
fn missing_options(config: &str) -> Vec<String> {
    let set: std::collections::HashSet<&str> = config.lines().collect();
    FRAGMENTS
        .iter()
        .flat_map(|(_, text)| text.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_") && !set.contains(l))
        .map(str::to_owned)
        .collect()
}

/// Builds (or reuses) the x86_64 guest kernel; returns its bzImage.
pub fn build(cache: &Cache) -> Result<PathBuf> {
    let arch = Arch::X86_64;
    let debs = debs::fetch(cache, arch, &[SOURCE_PACKAGE.to_owned()])?;
    let mut key = Key::new("guest-kernel-v1");
    key.add(debs[0].file_name().expect("a file").as_encoded_bytes());
    for (name, text) in FRAGMENTS {
        key.add(name).add(text);
    }
    let dir = cache.get_or_build("guest-kernel-x86_64", &key, |out| {
        let work = out.join("work");
        fs::create_dir_all(&work)?;
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(&debs[0]).arg(&work))?;
        let tarball = work.join(format!("usr/src/{SOURCE_PACKAGE}.tar.xz"));
        let step = Step::start("unpacking the kernel source");
        cmd::run(Command::new("tar").arg("-xf").arg(&tarball).arg("-C").arg(&work))?;
        step.done();
        let src = work.join(SOURCE_PACKAGE);
        for (name, text) in FRAGMENTS {
            fs::write(src.join(name), text)?;
        }
        let make = |args: &[&str]| cmd::output(Command::new("make").args(args).current_dir(&src)).map(drop);
        make(&["tinyconfig"])?;
        let mut merge = Command::new("scripts/kconfig/merge_config.sh");
        merge.args(["-m", ".config"]).args(FRAGMENTS.iter().map(|(name, _)| name)).current_dir(&src);
        cmd::output(&mut merge)?;
        make(&["olddefconfig"])?;
        let config = fs::read_to_string(src.join(".config"))?;
        let missing = missing_options(&config);
        if !missing.is_empty() {
            bail!(
                "the guest kernel config lost options the fragments set (a dependency is off): {}",
                missing.join(" ")
            );
        }
        let jobs = format!("-j{}", std::thread::available_parallelism().map_or(2, |n| n.get()));
        let step = Step::start("compiling the guest kernel (tinyconfig + runx fragments)");
        make(&[&jobs, "bzImage"])?;
        step.done();
        fs::copy(src.join("arch/x86/boot/bzImage"), out.join("vmlinuz"))?;
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
        let full: String = FRAGMENTS.iter().map(|(_, t)| *t).collect::<Vec<_>>().join("\n");
        assert!(missing_options(&full).is_empty());
        let without_ext4 = full.replace("CONFIG_EXT4_FS=y", "# CONFIG_EXT4_FS is not set");
        assert_eq!(missing_options(&without_ext4), ["CONFIG_EXT4_FS=y"]);
    }
}
