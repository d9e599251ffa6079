//! A real Debian image (x86_64, case `debian-image`): a `debootstrap --variant=minbase` of
//! bookworm (about 115 MiB of files), packed with `runx_tools::oci_archive` as one layer, that
//! dom0 imports and runs through containerd and runx at runx's default settings. The guest carries
//! that root in RAM; runx sizes it (`docs/runtime.md`, "A root in the guest's RAM").

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use runx_tools::oci_archive::{self, Entry, Image};

use super::cache::{Cache, Key};
use super::payload::{Case, Need, Share};
use super::rootfs;
use crate::arch::Arch;
use crate::progress::Step;

pub const CASE: Case = Case::builtin("debian-image", include_str!("assets/cases/debian-image.sh"), 900).needing(&[
    Need::Containerd,
    Need::Runtime,
    Need::DebianImage,
]);

const REFERENCE: &str = "docker.io/runx-lab/debian:bookworm";
const ARCHIVE: &str = "debian.tar";
/// Packages whose candidate versions key the cached image: a Debian point release moves them.
const KEYED_BY: &[&str] = &["base-files", "libc6", "bash", "coreutils", "dpkg", "apt"];

/// Builds (or reuses) the Debian image archive. x86_64 only: debootstrap's second stage runs the
/// target's programs.
fn build(cache: &Cache) -> Result<PathBuf> {
    let arch = Arch::X86_64;
    let mut key = Key::new("debian-image-v1");
    key.add(rootfs::SUITE).add(REFERENCE).add(rootfs::versions(arch, KEYED_BY)?);
    let dir = cache.get_or_build(&format!("debian-image-{}", arch.name()), &key, |out| {
        let tree = out.join("tree");
        rootfs::minbase(arch, &[], &tree)?;
        let step = Step::start(format!("packing {REFERENCE} with runx_tools::oci_archive"));
        let image = Image {
            reference: REFERENCE.into(),
            architecture: arch.deb().into(),
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            labels: Default::default(),
            entries: entries(&tree)?,
        };
        oci_archive::write(&image, fs::File::create(out.join(ARCHIVE))?)?;
        fs::remove_dir_all(&tree)?;
        step.done();
        Ok(())
    })?;
    Ok(dir.join(ARCHIVE))
}

/// Puts the Debian image into the share, as `images/lab-debian.tar`.
pub fn stage(cache: &Cache, share: &Share) -> Result<()> {
    share.add_file("images/lab-debian.tar", &build(cache)?)
}

/// The layer's entries for the files under `tree`: folders, files (a hard link becomes a copy)
/// and symlinks with their modes, all owned by root. Device nodes, fifos and sockets are left
/// out: runx-init gives the guest its /dev.
fn entries(tree: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for found in walkdir::WalkDir::new(tree).min_depth(1) {
        let found = found?;
        let path = found.path();
        let name = path.strip_prefix(tree)?.to_str().with_context(|| format!("{} is not UTF-8", path.display()))?;
        let mode = found.metadata()?.permissions().mode() & 0o7777;
        let kind = found.file_type();
        let entry = if kind.is_dir() {
            Entry::Dir { path: name.into(), mode }
        } else if kind.is_file() {
            let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Entry::File { path: name.into(), mode, data }
        } else if kind.is_symlink() {
            let target = fs::read_link(path)?;
            let target = target.to_str().with_context(|| format!("{}'s target is not UTF-8", path.display()))?;
            Entry::Symlink { path: name.into(), target: target.into() }
        } else {
            continue;
        };
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;

    #[test]
    fn walks_folders_files_and_symlinks_with_their_modes() {
        let tree = std::env::temp_dir().join(format!("runx-debian-entries-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tree);
        fs::create_dir_all(tree.join("usr/bin")).unwrap();
        fs::create_dir_all(tree.join("dev")).unwrap();
        fs::write(tree.join("usr/bin/su"), b"su").unwrap();
        fs::set_permissions(tree.join("usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(tree.join("usr/bin/su"), tree.join("usr/bin/su2")).unwrap();
        symlink("usr/bin", tree.join("bin")).unwrap();
        let _socket = UnixListener::bind(tree.join("dev/log")).unwrap();

        let mut found = entries(&tree).unwrap();
        found.sort_by(|a, b| a.path().cmp(b.path()));
        let described: Vec<String> = found
            .iter()
            .map(|e| match e {
                Entry::Dir { path, mode } => format!("dir {path} {mode:o}"),
                Entry::File { path, mode, data } => format!("file {path} {mode:o} {}", String::from_utf8_lossy(data)),
                Entry::Symlink { path, target } => format!("symlink {path} -> {target}"),
            })
            .collect();
        let dir_mode = fs::metadata(tree.join("usr")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(
            described,
            [
                "symlink bin -> usr/bin".to_owned(),
                format!("dir dev {dir_mode:o}"),
                format!("dir usr {dir_mode:o}"),
                format!("dir usr/bin {dir_mode:o}"),
                "file usr/bin/su 4755 su".to_owned(),
                "file usr/bin/su2 4755 su".to_owned(),
            ]
        );
        fs::remove_dir_all(tree).unwrap();
    }
}
