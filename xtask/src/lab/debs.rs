//! Debian packages for the lab: resolved with the host's apt for the wanted
//! architecture, downloaded once, checked against the archive's SHA-256, and
//! unpacked with `dpkg -x` (never installed on the host).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::cache::{Cache, Key};
use crate::arch::Arch;
use crate::cmd;
use crate::progress::Step;

/// One package as apt resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deb {
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
}

impl Deb {
    /// The package's name: what its file name (`NAME_VERSION_ARCH.deb`) starts with.
    pub fn package(&self) -> &str {
        self.file_name.split('_').next().unwrap_or(&self.file_name)
    }
}

/// Parses `apt-get download --print-uris` lines:
/// `'URI' FILE SIZE SHA256:HEX`.
fn parse_print_uris(text: &str) -> Result<Vec<Deb>> {
    let mut debs = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('\'')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, file_name, size, hash] = fields[..] else {
            bail!("unexpected line from apt-get --print-uris: {line}");
        };
        let sha256 =
            hash.strip_prefix("SHA256:").with_context(|| format!("apt gave no SHA256 for {file_name}: {line}"))?;
        debs.push(Deb {
            file_name: file_name.to_owned(),
            size: size.parse().with_context(|| format!("bad size in: {line}"))?,
            sha256: sha256.to_owned(),
        });
    }
    Ok(debs)
}

/// The versioned kernel package that `linux-image-<arch>` points at today.
pub fn kernel_package(arch: Arch) -> Result<String> {
    let meta = format!("linux-image-{}:{}", arch.deb(), arch.deb());
    let text = cmd::stdout(Command::new("apt-cache").args(["depends", "--important", &meta]))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|dep| dep.starts_with("linux-image-"))
        .map(|dep| dep.split(':').next().unwrap_or(dep).to_owned())
        .with_context(|| {
            format!("apt knows no kernel behind {meta}: run `dpkg --add-architecture {} && apt-get update`", arch.deb())
        })
}

fn resolve(arch: Arch, packages: &[String]) -> Result<Vec<Deb>> {
    let qualified: Vec<String> = packages.iter().map(|p| format!("{p}:{}", arch.deb())).collect();
    let text = cmd::stdout(Command::new("apt-get").args(["download", "--print-uris"]).args(&qualified))
        .with_context(|| {
            format!(
                "apt cannot resolve the {} lab packages: run `dpkg --add-architecture {} && apt-get update` (scripts/prepare-host does)",
                arch.deb(),
                arch.deb()
            )
        })?;
    let debs = parse_print_uris(&text)?;
    if debs.len() != packages.len() {
        bail!("apt resolved {} of {} packages: {packages:?}", debs.len(), packages.len());
    }
    Ok(debs)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Downloads `packages` for `arch` into the shared download folder, reusing
/// files whose checksum matches, and returns their paths.
pub fn fetch(cache: &Cache, arch: Arch, packages: &[String]) -> Result<Vec<PathBuf>> {
    let debs = resolve(arch, packages)?;
    let dir = cache.root().join("downloads").join(arch.deb());
    fs::create_dir_all(&dir)?;
    let missing: Vec<&Deb> = debs
        .iter()
        .filter(|d| cache.fresh() || sha256_file(&dir.join(&d.file_name)).ok().as_deref() != Some(&d.sha256))
        .collect();
    if !missing.is_empty() {
        let bytes: u64 = missing.iter().map(|d| d.size).sum();
        let step = Step::start(format!("downloading {} {} packages ({} MiB)", missing.len(), arch.deb(), bytes >> 20));
        // By the names in the file names: apt lists the files in its own order (pre-dependencies
        // first), not in the order the packages were asked for.
        let names: Vec<String> = missing.iter().map(|d| format!("{}:{}", d.package(), arch.deb())).collect();
        cmd::output(Command::new("apt-get").arg("download").args(&names).current_dir(&dir))?;
        step.done();
    }
    let mut paths = Vec::new();
    for deb in &debs {
        let path = dir.join(&deb.file_name);
        let actual = sha256_file(&path)?;
        if actual != deb.sha256 {
            bail!("{} has SHA256 {actual}, the archive says {}: delete it and run again", path.display(), deb.sha256);
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Unpacks `debs` into one cached tree (keyed by the exact package files).
pub fn unpack(cache: &Cache, name: &str, debs: &[PathBuf]) -> Result<PathBuf> {
    let mut key = Key::new("unpack-v1");
    for deb in debs {
        key.add(deb.file_name().expect("deb paths name a file").as_encoded_bytes());
    }
    cache.get_or_build(name, &key, |dir| {
        for deb in debs {
            cmd::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apt_print_uris() {
        let text = "'http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4%2bdeb12u1%2bb1_arm64.deb' busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb 822236 SHA256:732c9135\n";
        let debs = parse_print_uris(text).unwrap();
        assert_eq!(
            debs,
            [Deb {
                file_name: "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb".into(),
                size: 822236,
                sha256: "732c9135".into()
            }]
        );
        assert_eq!(debs[0].package(), "busybox-static");
        assert!(parse_print_uris("'uri' file 12 MD5Sum:ab\n").is_err());
    }
}
