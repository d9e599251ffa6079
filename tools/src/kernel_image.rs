//! OCI images that carry their own kernel (a Linux, an RTOS, a baremetal app) and optionally a
//! ramdisk and root files: runx boots the kernel directly, with the container's args as its
//! command line. The image says where the kernel is in three ways, so that every client finds
//! it: the `io.runx.kernel` label (also a manifest annotation) and the `RUNX_KERNEL` env that
//! RunX used, which containerd passes to the runtime.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use runx_launch::annotations::{ENV_KERNEL, ENV_RAMDISK, KERNEL, RAMDISK};

use crate::oci_archive::{Entry, Image};
/// Where the image puts the kernel and ramdisk.
const BOOT_DIR: &str = "boot";

#[derive(Debug, thiserror::Error)]
pub enum KernelImageError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0} is not a file name runx can place in /boot of the image")]
    BadName(PathBuf),
    #[error("the root folder already holds /{0}: remove it, or rename the kernel or ramdisk")]
    Clash(String),
    #[error("{0} is a device, socket or fifo: an image layer here holds files, folders and symlinks only")]
    Special(PathBuf),
}

/// What goes into a kernel image.
#[derive(Debug, Clone)]
pub struct KernelImage {
    pub reference: String,
    /// GOARCH spelling: `amd64`, `arm64`.
    pub architecture: String,
    pub kernel: PathBuf,
    pub ramdisk: Option<PathBuf>,
    /// A folder whose contents become the rest of the container's rootfs.
    pub rootfs: Option<PathBuf>,
    /// The default kernel command line, as the image's `Cmd` (`ctr run IMAGE ID ARGS` replaces it).
    pub args: Vec<String>,
    /// More labels, e.g. a profile the image is meant for (documentation only: the admin decides).
    pub labels: BTreeMap<String, String>,
}

fn read(path: &Path) -> Result<Vec<u8>, KernelImageError> {
    fs::read(path).map_err(|source| KernelImageError::Read { path: path.to_owned(), source })
}

fn boot_path(file: &Path) -> Result<String, KernelImageError> {
    let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| KernelImageError::BadName(file.to_owned()))?;
    Ok(format!("{BOOT_DIR}/{name}"))
}

/// The entries of a root folder, relative, sorted by the archive writer.
fn folder_entries(root: &Path) -> Result<Vec<Entry>, KernelImageError> {
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry
            .map_err(|e| KernelImageError::Read { path: e.path().unwrap_or(root).to_owned(), source: e.into() })?;
        let path = entry.path();
        let relative = path.strip_prefix(root).expect("walkdir stays under its root").to_string_lossy().into_owned();
        let meta = entry.metadata().map_err(|e| KernelImageError::Read { path: path.to_owned(), source: e.into() })?;
        let mode = meta.permissions().mode() & 0o7777;
        let file_type = entry.file_type();
        entries.push(if file_type.is_dir() {
            Entry::Dir { path: relative, mode }
        } else if file_type.is_file() {
            Entry::File { path: relative, mode, data: read(path)? }
        } else if file_type.is_symlink() {
            let target =
                fs::read_link(path).map_err(|source| KernelImageError::Read { path: path.to_owned(), source })?;
            Entry::Symlink { path: relative, target: target.to_string_lossy().into_owned() }
        } else {
            return Err(KernelImageError::Special(path.to_owned()));
        });
    }
    Ok(entries)
}

impl KernelImage {
    /// The image to write with `oci_archive::write`.
    pub fn build(&self) -> Result<Image, KernelImageError> {
        let mut entries = match &self.rootfs {
            Some(root) => folder_entries(root)?,
            None => Vec::new(),
        };
        let mut labels = self.labels.clone();
        let mut env = Vec::new();
        if !entries.iter().any(|e| matches!(e, Entry::Dir { path, .. } if path == BOOT_DIR)) {
            entries.push(Entry::Dir { path: BOOT_DIR.into(), mode: 0o755 });
        }
        let files = [(Some(&self.kernel), KERNEL, ENV_KERNEL), (self.ramdisk.as_ref(), RAMDISK, ENV_RAMDISK)];
        for (file, label, variable) in files {
            let Some(file) = file else { continue };
            let path = boot_path(file)?;
            if entries.iter().any(|e| e.path() == path) {
                return Err(KernelImageError::Clash(path));
            }
            entries.push(Entry::File { path: path.clone(), mode: 0o644, data: read(file)? });
            labels.insert(label.to_owned(), format!("/{path}"));
            env.push(format!("{variable}=/{path}"));
        }
        Ok(Image {
            reference: self.reference.clone(),
            architecture: self.architecture.clone(),
            cmd: self.args.clone(),
            env,
            labels,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci_archive;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runx-kernel-image-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample(dir: &Path) -> KernelImage {
        fs::write(dir.join("zephyr.elf"), b"\x7fELF kernel").unwrap();
        fs::write(dir.join("initrd.cpio"), b"070701").unwrap();
        KernelImage {
            reference: "example.com/rtos/timer:1.0".into(),
            architecture: "arm64".into(),
            kernel: dir.join("zephyr.elf"),
            ramdisk: Some(dir.join("initrd.cpio")),
            rootfs: None,
            args: vec!["console=hvc0".into()],
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn the_image_names_its_kernel_by_label_and_env() {
        let dir = scratch("names");
        let image = sample(&dir).build().unwrap();
        assert_eq!(image.labels[KERNEL], "/boot/zephyr.elf");
        assert_eq!(image.labels[RAMDISK], "/boot/initrd.cpio");
        assert_eq!(image.env, ["RUNX_KERNEL=/boot/zephyr.elf", "RUNX_RAMDISK=/boot/initrd.cpio"]);
        assert_eq!(image.cmd, ["console=hvc0"]);
        let kernel = image.entries.iter().find(|e| e.path() == "boot/zephyr.elf").unwrap();
        assert!(matches!(kernel, Entry::File { data, .. } if data == b"\x7fELF kernel"));
        oci_archive::write(&image, Vec::new()).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn root_files_come_along_and_may_not_hide_the_kernel() {
        let dir = scratch("rootfs");
        let root = dir.join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/app.conf"), b"rate=1000").unwrap();
        std::os::unix::fs::symlink("app.conf", root.join("etc/current")).unwrap();
        let mut spec = KernelImage { rootfs: Some(root.clone()), ..sample(&dir) };
        let image = spec.build().unwrap();
        let paths: Vec<&str> = image.entries.iter().map(Entry::path).collect();
        for path in ["etc", "etc/app.conf", "etc/current", "boot", "boot/zephyr.elf"] {
            assert!(paths.contains(&path), "{path} not in {paths:?}");
        }
        fs::create_dir_all(root.join("boot")).unwrap();
        fs::write(root.join("boot/zephyr.elf"), b"other").unwrap();
        let err = spec.build().unwrap_err().to_string();
        assert!(err.contains("already holds /boot/zephyr.elf"), "{err}");
        spec.kernel = dir.join("missing.elf");
        assert!(spec.build().unwrap_err().to_string().contains("missing.elf"));
        fs::remove_dir_all(dir).unwrap();
    }
}
