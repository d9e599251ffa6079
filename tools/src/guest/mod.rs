//! Guest images for runx: the base initramfs (runx-init as /init) and the
//! per-container archive (launch spec, and the rootfs in `initramfs` mode).
//! Linux unpacks concatenated cpio archives, so a guest's ramdisk is the
//! (uncompressed) base followed by the container's (gzip) archive; and the
//! ext4 image for `disk` mode.

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use runx_launch::{LaunchSpec, RootfsMode};

use crate::cpio::{CpioError, CpioWriter, Meta};

pub mod cache;

#[derive(Debug, thiserror::Error)]
pub enum GuestImageError {
    #[error(transparent)]
    Cpio(#[from] CpioError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("launch spec: {0}")]
    Spec(#[from] runx_launch::SpecError),
    #[error("the launch spec's rootfs mode is {0:?}, which does not pack the rootfs into the archive")]
    WrongMode(RootfsMode),
    #[error("share name {0:?} must be a plain file name (no '/', not starting with '.')")]
    BadShare(String),
    #[error("mkfs.ext4 failed for {path}: {why}")]
    Mkfs { path: PathBuf, why: String },
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> GuestImageError + '_ {
    move |source| GuestImageError::Read { path: path.to_owned(), source }
}

/// The base initramfs: `/init` is runx-init, plus the folders and the console node it needs.
/// With `busybox`, also `/bin/busybox` and `/bin/sh`, for debugging a guest booted with
/// `rdinit=/bin/sh` (the container's process never sees them: it runs in its own root).
/// It is written uncompressed: Xen's x86 PV domain builder gunzips a gzip ramdisk itself and
/// keeps only its first gzip member, which would drop the container archives that follow.
pub fn write_base(
    runx_init: &Path,
    busybox: Option<&Path>,
    mtime: u32,
    out: impl Write,
) -> Result<(), GuestImageError> {
    let mut cpio = CpioWriter::new(out);
    let dir = Meta::root(0o755, mtime);
    for name in ["dev", "proc", "sys", "runx"] {
        cpio.append_dir(name, dir)?;
    }
    cpio.append_char_device("dev/console", Meta::root(0o600, mtime), 5, 1)?;
    let binary = |cpio: &mut CpioWriter<_>, name: &str, path: &Path| -> Result<(), GuestImageError> {
        let file = fs::File::open(path).map_err(read_err(path))?;
        let size = file.metadata().map_err(read_err(path))?.len();
        cpio.append_reader(name, dir, size, file)?;
        Ok(())
    };
    if let Some(busybox) = busybox {
        cpio.append_dir("bin", dir)?;
        binary(&mut cpio, "bin/busybox", busybox)?;
        cpio.append_symlink("bin/sh", Meta::root(0o777, mtime), "busybox")?;
    }
    binary(&mut cpio, "init", runx_init)?;
    cpio.finish()?;
    Ok(())
}

/// The per-container archive: `/runx/launch.json` and, in `initramfs` mode, `rootfs` under
/// `/runx/rootfs` (two gzip members: the spec, then the root as `write_rootfs` packs it).
pub fn write_container(
    spec: &LaunchSpec,
    rootfs: Option<&Path>,
    mtime: u32,
    mut out: impl Write,
) -> Result<(), GuestImageError> {
    write_spec(spec, &[], mtime, &mut out)?;
    match (spec.rootfs.mode, rootfs) {
        (RootfsMode::Initramfs, Some(tree)) => write_rootfs(tree, mtime, out),
        (mode, Some(_)) => Err(GuestImageError::WrongMode(mode)),
        (_, None) => Ok(()),
    }
}

/// A file or folder of the host's, packed into the guest for a `bind` mount of the launch spec
/// whose source is `/runx/shares/<name>`.
pub struct HostShare<'a> {
    pub name: &'a str,
    pub host_path: &'a Path,
}

/// The launch spec as `/runx/launch.json` (with an empty `/runx/rootfs` for `initramfs` mode,
/// which a root archive from `write_rootfs` fills), and the shares under `/runx/shares/`.
pub fn write_spec(
    spec: &LaunchSpec,
    shares: &[HostShare<'_>],
    mtime: u32,
    out: impl Write,
) -> Result<(), GuestImageError> {
    let json = spec.to_json()?;
    let mut cpio = CpioWriter::new(GzEncoder::new(out, flate2::Compression::fast()));
    cpio.append_dir("runx", Meta::root(0o755, mtime))?;
    cpio.append_file("runx/launch.json", Meta::root(0o600, mtime), &json)?;
    if !shares.is_empty() {
        cpio.append_dir("runx/shares", Meta::root(0o755, mtime))?;
    }
    for share in shares {
        if share.name.is_empty() || share.name.contains('/') || share.name.starts_with('.') {
            return Err(GuestImageError::BadShare(share.name.to_owned()));
        }
        let name = format!("runx/shares/{}", share.name);
        let md = fs::metadata(share.host_path).map_err(read_err(share.host_path))?;
        let meta = Meta { perm: md.mode() & 0o7777, uid: md.uid(), gid: md.gid(), mtime };
        if md.is_dir() {
            cpio.append_dir(&name, meta)?;
            cpio.append_tree(share.host_path, &name, mtime)?;
        } else {
            let file = fs::File::open(share.host_path).map_err(read_err(share.host_path))?;
            cpio.append_reader(&name, meta, md.len(), file)?;
        }
    }
    if spec.rootfs.mode == RootfsMode::Initramfs {
        cpio.append_dir("runx/rootfs", Meta::root(0o755, mtime))?;
    }
    cpio.finish()?.finish().map_err(CpioError::from)?;
    Ok(())
}

/// A container root packed under `/runx/rootfs` (gzip newc): what `cache::ArchiveCache` keeps per image.
pub fn write_rootfs(tree: &Path, mtime: u32, out: impl Write) -> Result<(), GuestImageError> {
    let md = fs::metadata(tree).map_err(read_err(tree))?;
    let meta = Meta { perm: md.mode() & 0o7777, uid: md.uid(), gid: md.gid(), mtime };
    let mut cpio = CpioWriter::new(GzEncoder::new(out, flate2::Compression::fast()));
    cpio.append_dir("runx", Meta::root(0o755, mtime))?;
    cpio.append_dir("runx/rootfs", meta)?;
    cpio.append_tree(tree, "runx/rootfs", mtime)?;
    cpio.finish()?.finish().map_err(CpioError::from)?;
    Ok(())
}

/// An ext4 image of `tree` for `disk` mode, sized to the tree plus `headroom_mib`. Reproducible:
/// the same tree and `mtime` give the same bytes (the UUID and directory hash seed come from the
/// tree's content, the file system's own times from `mtime`).
pub fn write_ext4(tree: &Path, dest: &Path, headroom_mib: u64, mtime: u32) -> Result<(), GuestImageError> {
    let mut used = 0u64;
    for entry in walkdir::WalkDir::new(tree) {
        let entry = entry.map_err(|e| CpioError::Walk { path: tree.to_owned(), source: e })?;
        used += entry.metadata().map_err(|e| CpioError::Walk { path: tree.to_owned(), source: e })?.len() + 4096;
    }
    let size = (used + (headroom_mib << 20) + (8 << 20)).div_ceil(1 << 20) << 20;
    let key = cache::tree_key(tree)?;
    let uuid = format!("{}-{}-{}-{}-{}", &key[0..8], &key[8..12], &key[12..16], &key[16..20], &key[20..32]);
    let file = fs::File::create(dest).map_err(read_err(dest))?;
    file.set_len(size).map_err(read_err(dest))?;
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-U", &uuid, "-E", &format!("hash_seed={uuid},root_owner=0:0"), "-d"])
        .arg(tree)
        .arg(dest)
        .env("E2FSPROGS_FAKE_TIME", mtime.to_string())
        .output()
        .map_err(|e| GuestImageError::Mkfs {
            path: dest.to_owned(),
            why: format!("cannot run mkfs.ext4 ({e}): install e2fsprogs"),
        })?;
    if !out.status.success() {
        let _ = fs::remove_file(dest);
        return Err(GuestImageError::Mkfs {
            path: dest.to_owned(),
            why: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Writes `parts` one after the other into `dest`: the ramdisk a guest boots is the base
/// followed by the container's archives.
pub fn concatenate(parts: &[&Path], dest: &Path) -> Result<(), GuestImageError> {
    let mut out = BufWriter::new(fs::File::create(dest).map_err(read_err(dest))?);
    for part in parts {
        let mut file = fs::File::open(part).map_err(read_err(part))?;
        std::io::copy(&mut file, &mut out).map_err(read_err(dest))?;
    }
    out.flush().map_err(read_err(dest))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runx_launch::{Process, Rootfs, User, VERSION};

    fn spec(mode: RootfsMode) -> LaunchSpec {
        LaunchSpec {
            version: VERSION,
            process: Process {
                args: vec!["/bin/true".into()],
                env: vec![],
                cwd: "/".into(),
                user: User { uid: 0, gid: 0, additional_gids: vec![], umask: None },
                rlimits: vec![],
                no_new_privileges: false,
                terminal: false,
            },
            hostname: None,
            rootfs: Rootfs {
                mode,
                device: (mode == RootfsMode::Disk).then(|| "/dev/xvda".into()),
                fstype: None,
                readonly: false,
            },
            mounts: vec![],
            wait_for_start: false,
        }
    }

    /// Entry names of every newc archive in `archive` (gzip members decompressed), in order:
    /// what the kernel unpacks. GNU cpio would stop at the first trailer.
    fn list(archive: &[u8]) -> Vec<String> {
        let mut raw = Vec::new();
        if archive.starts_with(b"\x1f\x8b") {
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(archive), &mut raw).unwrap();
        } else {
            raw = archive.to_vec();
        }
        let field = |at: usize| usize::from_str_radix(std::str::from_utf8(&raw[at..at + 8]).unwrap(), 16).unwrap();
        let align = |n: usize| (n + 3) & !3;
        let (mut at, mut names) = (0, Vec::new());
        while at + 110 <= raw.len() {
            assert_eq!(&raw[at..at + 6], b"070701", "bad header at {at}");
            let (size, name_len) = (field(at + 54), field(at + 94));
            let name = std::str::from_utf8(&raw[at + 110..at + 110 + name_len - 1]).unwrap().to_owned();
            at = align(align(at + 110 + name_len) + size);
            if name != "TRAILER!!!" {
                names.push(name);
            }
        }
        names
    }

    #[test]
    fn container_archive_carries_spec_and_rootfs() {
        let tree = std::env::temp_dir().join(format!("runx-guest-tree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tree);
        fs::create_dir_all(tree.join("bin")).unwrap();
        fs::write(tree.join("bin/app"), b"app").unwrap();
        let mut out = Vec::new();
        write_container(&spec(RootfsMode::Initramfs), Some(&tree), 0, &mut out).unwrap();
        assert_eq!(
            list(&out),
            [
                "runx",
                "runx/launch.json",
                "runx/rootfs",
                "runx",
                "runx/rootfs",
                "runx/rootfs/bin",
                "runx/rootfs/bin/app"
            ]
        );
        let err = write_container(&spec(RootfsMode::Disk), Some(&tree), 0, Vec::new()).unwrap_err();
        assert!(matches!(err, GuestImageError::WrongMode(RootfsMode::Disk)), "{err}");
        fs::remove_dir_all(tree).unwrap();
    }

    #[test]
    fn ext4_images_are_reproducible_and_hold_the_tree() {
        let dir = std::env::temp_dir().join(format!("runx-guest-ext4-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("tree/etc")).unwrap();
        fs::write(dir.join("tree/etc/motd"), b"from the disk\n").unwrap();
        write_ext4(&dir.join("tree"), &dir.join("a.ext4"), 1, 1_700_000_000).unwrap();
        write_ext4(&dir.join("tree"), &dir.join("b.ext4"), 1, 1_700_000_000).unwrap();
        assert!(fs::read(dir.join("a.ext4")).unwrap() == fs::read(dir.join("b.ext4")).unwrap(), "images differ");
        let cat = Command::new("debugfs").args(["-R", "cat /etc/motd"]).arg(dir.join("a.ext4")).output().unwrap();
        assert_eq!(cat.stdout, b"from the disk\n", "{}", String::from_utf8_lossy(&cat.stderr));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn base_archive_has_init_and_console() {
        let init = std::env::temp_dir().join(format!("runx-guest-init-{}", std::process::id()));
        fs::write(&init, b"\x7fELF").unwrap();
        let mut out = Vec::new();
        write_base(&init, None, 0, &mut out).unwrap();
        assert!(out.starts_with(b"070701"), "the base archive must not be compressed");
        assert_eq!(list(&out), ["dev", "proc", "sys", "runx", "dev/console", "init"]);
        let mut debug = Vec::new();
        write_base(&init, Some(&init), 0, &mut debug).unwrap();
        assert_eq!(list(&debug), ["dev", "proc", "sys", "runx", "dev/console", "bin", "bin/busybox", "bin/sh", "init"]);
        fs::remove_file(init).unwrap();
    }
}
