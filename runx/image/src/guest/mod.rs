//! Guest images for runx: the base initramfs (runx-init as /init) and the
//! per-container archive (launch spec, and the rootfs in `initramfs` mode).
//! Linux unpacks concatenated cpio archives, so a guest's ramdisk is the
//! (uncompressed) base followed by the container's (gzip) archive; and the
//! ext4 image for `disk` mode.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::stat;
use nix::sys::statvfs::{fstatvfs, FsFlags};
use runx_launch::{LaunchSpec, RootfsMode};

use crate::cpio::{CpioError, CpioWriter, Meta};
use crate::tree::{self, TreeError};

pub mod cache;

#[derive(Debug, thiserror::Error)]
pub enum GuestImageError {
    #[error(transparent)]
    Cpio(#[from] CpioError),
    #[error(transparent)]
    Tree(#[from] TreeError),
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
        // The host's own symlinks in the path (say /etc/resolv.conf) are its to follow.
        let host_path = fs::canonicalize(share.host_path).map_err(read_err(share.host_path))?;
        let md = fs::metadata(&host_path).map_err(read_err(&host_path))?;
        let meta = Meta { perm: md.mode() & 0o7777, uid: md.uid(), gid: md.gid(), mtime };
        if md.is_dir() {
            cpio.append_dir(&name, meta)?;
            cpio.append_tree(&host_path, &name, mtime)?;
        } else {
            let file = fs::File::open(&host_path).map_err(read_err(&host_path))?;
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
    let md = tree::open_dir(tree)?.metadata().map_err(read_err(tree))?;
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
    make_ext4(&[OsStr::new("mkfs.ext4")], tree, dest, headroom_mib, mtime)
}

/// `write_ext4` with `mkfs` (a program and its first arguments) in the place of mkfs.ext4.
fn make_ext4(mkfs: &[&OsStr], tree: &Path, dest: &Path, headroom_mib: u64, mtime: u32) -> Result<(), GuestImageError> {
    let mut used = 0u64;
    tree::walk(tree, |entry| -> Result<(), GuestImageError> {
        used += entry.meta.len() + 4096;
        Ok(())
    })?;
    let size = (used + (headroom_mib << 20) + (8 << 20)).div_ceil(1 << 20) << 20;
    let key = cache::tree_key(tree)?;
    let uuid = format!("{}-{}-{}-{}-{}", &key[0..8], &key[8..12], &key[12..16], &key[16..20], &key[20..32]);
    let file = fs::File::create(dest).map_err(read_err(dest))?;
    file.set_len(size).map_err(read_err(dest))?;
    let failed = |why: String| GuestImageError::Mkfs { path: dest.to_owned(), why };
    // mkfs.ext4 -d reads the tree by name, following symlinks in a name it is handed. It runs in
    // a mount namespace of its own where it sees the tree only through a read-only bind mount
    // that follows no symlink: a folder swapped for a symlink to the host's / meanwhile stops it.
    let view = dest.with_file_name(format!(".{}.tree", dest.file_name().unwrap_or_default().to_string_lossy()));
    let _ = fs::remove_dir(&view);
    fs::DirBuilder::new().mode(0o700).create(&view).map_err(read_err(&view))?;
    let root = tree::open_dir(tree)?;
    let root_md = root.metadata().map_err(read_err(tree))?;
    let kept = mount_flags_to_keep(&root)
        .map_err(|e| failed(format!("cannot read the mount flags of {}: {e}", tree.display())))?;
    let c_path = |path: &Path| CString::new(path.as_os_str().as_bytes()).map_err(|e| failed(e.to_string()));
    let confined = Confined { tree: c_path(tree)?, view: c_path(&view)?, dev: root_md.dev(), ino: root_md.ino(), kept };
    let mut command = Command::new(mkfs[0]);
    command
        .args(&mkfs[1..])
        .args(["-q", "-F", "-U", &uuid, "-E", &format!("hash_seed={uuid},root_owner=0:0"), "-d"])
        .arg(&view)
        .arg(dest)
        .env("E2FSPROGS_FAKE_TIME", mtime.to_string());
    // SAFETY: between fork and exec the closure makes only system calls, on memory prepared
    // before the fork.
    unsafe { command.pre_exec(move || confined.enter()) };
    let out = command.output();
    let _ = fs::remove_dir(&view);
    let out = out.map_err(|e| match e.raw_os_error() {
        Some(nix::libc::ESTALE) => {
            failed(format!("{} was replaced while it was packed: pack a tree that nothing changes", tree.display()))
        }
        _ => failed(format!(
            "cannot run {} confined to the tree ({e}): install e2fsprogs, and run as root on Linux 5.10 or later \
             (a private mount namespace and a nosymfollow mount need both)",
            mkfs[0].to_string_lossy()
        )),
    })?;
    if !out.status.success() {
        let _ = fs::remove_file(dest);
        return Err(failed(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Ok(())
}

/// The flags of the tree's mount that a bind remount must repeat: some may be locked to it.
fn mount_flags_to_keep(root: &fs::File) -> nix::Result<MsFlags> {
    let flags = fstatvfs(root)?.flags();
    let mut kept = MsFlags::empty();
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if flags.contains(fs_flag) {
            kept |= ms_flag;
        }
    }
    Ok(kept)
}

/// What the child that runs mkfs.ext4 needs for its own view of the tree.
struct Confined {
    tree: CString,
    view: CString,
    /// The tree's folder as opened (without following a symlink) and read by runx.
    dev: u64,
    ino: u64,
    kept: MsFlags,
}

impl Confined {
    /// In the child, before exec: a private mount namespace in which `view` is a read-only bind
    /// mount of the tree that follows no symlink. The bind takes the tree by name (a descriptor
    /// from the parent's namespace cannot be bound in the new one), so it must turn out to be the
    /// folder runx read.
    fn enter(&self) -> std::io::Result<()> {
        let none = None::<&str>;
        unshare(CloneFlags::CLONE_NEWNS)?;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
        mount(Some(self.tree.as_c_str()), self.view.as_c_str(), none, MsFlags::MS_BIND, none)?;
        let bound = stat(self.view.as_c_str())?;
        if bound.st_dev != self.dev || bound.st_ino != self.ino {
            return Err(std::io::Error::from_raw_os_error(nix::libc::ESTALE));
        }
        let nosymfollow = MsFlags::from_bits_retain(nix::libc::MS_NOSYMFOLLOW);
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | nosymfollow | self.kept;
        mount(none, self.view.as_c_str(), none, flags, none)?;
        Ok(())
    }
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
                capabilities: None,
                terminal: false,
            },
            hostname: None,
            rootfs: Rootfs {
                mode,
                device: (mode == RootfsMode::Disk).then(|| runx_launch::ROOT_DEVICE.into()),
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
    fn mkfs_sees_the_tree_through_a_mount_that_follows_no_symlink() {
        let dir = std::env::temp_dir().join(format!("runx-guest-confined-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("tree")).unwrap();
        fs::create_dir_all(dir.join("host")).unwrap();
        fs::write(dir.join("host/secret"), b"host secret").unwrap();
        // What mkfs.ext4 would do after a folder it listed was swapped for a symlink out.
        std::os::unix::fs::symlink(dir.join("host"), dir.join("tree/etc")).unwrap();
        let mkfs = dir.join("mkfs.sh");
        fs::write(&mkfs, "cat \"$8/etc/secret\" > \"$9\"\n").unwrap();
        let err = make_ext4(&[OsStr::new("sh"), mkfs.as_os_str()], &dir.join("tree"), &dir.join("out.ext4"), 1, 0)
            .unwrap_err();
        assert!(err.to_string().contains("Too many levels of symbolic links"), "{err}");
        assert!(fs::read(dir.join("out.ext4")).map_or(true, |image| image != b"host secret"));
        assert!(!dir.join(".out.ext4.tree").exists(), "the mount point is left behind");
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
