//! A streaming writer for the `newc` cpio format, the one Linux unpacks as
//! an initramfs. Entries are written in the order given; `append_tree`
//! sorts them, and a fixed mtime makes the archive reproducible.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::tree::{self, TreeError};

const TRAILER: &str = "TRAILER!!!";

#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    #[error("cannot write the cpio archive: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("{path} is a socket, which an initramfs cannot carry: remove it from the tree")]
    Socket { path: PathBuf },
    #[error("{name:?} is not a relative archive path: use a path like \"bin/sh\"")]
    BadName { name: String },
}

/// Ownership, permissions and time of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (and setuid/setgid/sticky); the file type comes from the entry kind.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
}

impl Meta {
    pub fn root(perm: u32, mtime: u32) -> Self {
        Self { perm, uid: 0, gid: 0, mtime }
    }
}

/// File types as the `newc` mode field spells them.
mod kind {
    pub const DIR: u32 = 0o040000;
    pub const FILE: u32 = 0o100000;
    pub const SYMLINK: u32 = 0o120000;
    pub const CHAR: u32 = 0o020000;
    pub const BLOCK: u32 = 0o060000;
    pub const FIFO: u32 = 0o010000;
}

struct Header<'a> {
    name: &'a str,
    mode: u32,
    meta: Meta,
    size: u32,
    rdev: (u32, u32),
    /// For hard-linked files: the inode number all links share, and how many there are.
    link: Option<(u32, u32)>,
}

/// Writes a `newc` archive to `out`, entry by entry.
pub struct CpioWriter<W: Write> {
    out: W,
    offset: u64,
    next_ino: u32,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out, offset: 0, next_ino: 1 }
    }

    pub fn append_dir(&mut self, name: &str, meta: Meta) -> Result<(), CpioError> {
        self.header(&Header { name, mode: kind::DIR, meta, size: 0, rdev: (0, 0), link: None })
    }

    pub fn append_file(&mut self, name: &str, meta: Meta, data: &[u8]) -> Result<(), CpioError> {
        self.append_reader(name, meta, data.len() as u64, data)
    }

    /// Streams `size` bytes from `data` as a regular file.
    pub fn append_reader(&mut self, name: &str, meta: Meta, size: u64, data: impl Read) -> Result<(), CpioError> {
        self.append_data(name, meta, size, data, None)
    }

    fn append_data(
        &mut self,
        name: &str,
        meta: Meta,
        size: u64,
        mut data: impl Read,
        link: Option<(u32, u32)>,
    ) -> Result<(), CpioError> {
        let size32 = u32::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: newc entries stop at 4 GiB")))?;
        self.header(&Header { name, mode: kind::FILE, meta, size: size32, rdev: (0, 0), link })?;
        let copied = io::copy(&mut (&mut data).take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: expected {size} bytes, got {copied}"),
            )
            .into());
        }
        self.offset += size;
        self.pad()
    }

    pub fn append_symlink(&mut self, name: &str, meta: Meta, target: &str) -> Result<(), CpioError> {
        let size = target.len() as u32;
        self.header(&Header { name, mode: kind::SYMLINK, meta, size, rdev: (0, 0), link: None })?;
        self.out.write_all(target.as_bytes())?;
        self.offset += u64::from(size);
        self.pad()
    }

    /// A character device node (e.g. `dev/console`, 5:1).
    pub fn append_char_device(&mut self, name: &str, meta: Meta, major: u32, minor: u32) -> Result<(), CpioError> {
        self.header(&Header { name, mode: kind::CHAR, meta, size: 0, rdev: (major, minor), link: None })
    }

    /// Appends everything under `root` with sorted names, keeping modes, owners,
    /// symlinks and device nodes; every mtime becomes `mtime`. Names are relative
    /// to `root` and placed under `prefix` (empty for the archive root).
    /// Files hard-linked to each other inside the tree stay linked: they share an inode
    /// number and only the last of them carries the data, as GNU cpio writes them.
    /// The tree is read through descriptors (`tree::walk`): no symlink in it is followed.
    pub fn append_tree(&mut self, root: &Path, prefix: &str, mtime: u32) -> Result<(), CpioError> {
        // (device, inode) -> (archive inode, links in the tree, links written so far)
        let mut links: HashMap<(u64, u64), (u32, u32, u32)> = HashMap::new();
        tree::walk(root, |entry| -> Result<(), CpioError> {
            let md = &entry.meta;
            if md.is_file() && md.nlink() > 1 {
                // Inode numbers follow the sorted walk, so the archive stays reproducible.
                let next_ino = &mut self.next_ino;
                let group = links.entry((md.dev(), md.ino())).or_insert_with(|| {
                    *next_ino = next_ino.wrapping_add(1);
                    (*next_ino - 1, 0, 0)
                });
                group.1 += 1;
            }
            Ok(())
        })?;
        tree::walk(root, |entry| -> Result<(), CpioError> {
            if entry.rel.as_os_str().is_empty() {
                return Ok(());
            }
            let rel = entry.rel.to_str().ok_or_else(|| CpioError::BadName { name: entry.rel.display().to_string() })?;
            let name = if prefix.is_empty() { rel.to_owned() } else { format!("{prefix}/{rel}") };
            let md = &entry.meta;
            let meta = Meta { perm: md.mode() & 0o7777, uid: md.uid(), gid: md.gid(), mtime };
            let ft = md.file_type();
            if ft.is_dir() {
                self.append_dir(&name, meta)?;
            } else if ft.is_symlink() {
                let target = entry.read_link()?;
                let target = target
                    .to_str()
                    .ok_or_else(|| CpioError::BadName { name: Path::new(&target).display().to_string() })?;
                self.append_symlink(&name, meta, target)?;
            } else if ft.is_file() {
                let file = entry.open()?;
                match links.get_mut(&(md.dev(), md.ino())) {
                    Some((ino, count, written)) if *count > 1 => {
                        *written += 1;
                        let link = Some((*ino, *count));
                        let size = if written < count { 0 } else { md.len() };
                        self.append_data(&name, meta, size, file, link)?;
                    }
                    _ => self.append_reader(&name, meta, md.len(), file)?,
                }
            } else if ft.is_socket() {
                return Err(CpioError::Socket { path: entry.path.clone() });
            } else {
                let (mode, rdev) = if ft.is_fifo() {
                    (kind::FIFO, (0, 0))
                } else {
                    let kind = if ft.is_char_device() { kind::CHAR } else { kind::BLOCK };
                    (kind, dev_numbers(md.rdev()))
                };
                self.header(&Header { name: &name, mode, meta, size: 0, rdev, link: None })?;
            }
            Ok(())
        })
    }

    /// Writes the trailer and returns the sink.
    pub fn finish(mut self) -> Result<W, CpioError> {
        let meta = Meta::root(0, 0);
        self.next_ino = 0;
        self.header(&Header { name: TRAILER, mode: 0, meta, size: 0, rdev: (0, 0), link: None })?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(&mut self, h: &Header<'_>) -> Result<(), CpioError> {
        if h.name != TRAILER && (h.name.is_empty() || h.name.starts_with('/') || h.name.contains('\0')) {
            return Err(CpioError::BadName { name: h.name.to_owned() });
        }
        let (ino, nlink) = match h.link {
            Some(link) => link,
            None => {
                let ino = self.next_ino;
                self.next_ino = self.next_ino.wrapping_add(1);
                (ino, if h.mode == kind::DIR { 2 } else { 1 })
            }
        };
        let text = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{}\0",
            ino,
            h.mode | (h.meta.perm & 0o7777),
            h.meta.uid,
            h.meta.gid,
            nlink,
            h.meta.mtime,
            h.size,
            0,
            0,
            h.rdev.0,
            h.rdev.1,
            h.name.len() + 1,
            0,
            h.name
        );
        self.out.write_all(text.as_bytes())?;
        self.offset += text.len() as u64;
        self.pad()
    }

    fn pad(&mut self) -> Result<(), CpioError> {
        let pad = (4 - (self.offset % 4) as usize) % 4;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.offset += pad as u64;
        Ok(())
    }
}

/// Splits a Linux `dev_t` into (major, minor).
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::process::{Command, Stdio};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runx-cpio-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Lists an archive with GNU cpio (`-tv`), the reference reader.
    fn gnu_cpio_list(archive: &[u8]) -> String {
        let mut child = Command::new("cpio")
            .args(["-t", "-v", "--quiet", "--numeric-uid-gid"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("GNU cpio must be installed (apt-get install cpio)");
        child.stdin.take().unwrap().write_all(archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "cpio -t rejected the archive");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn gnu_cpio_extracts_what_was_written() {
        let mut w = CpioWriter::new(Vec::new());
        w.append_dir("bin", Meta::root(0o755, 0)).unwrap();
        w.append_file("bin/hello", Meta { perm: 0o4755, uid: 7, gid: 8, mtime: 0 }, b"hi\n").unwrap();
        w.append_symlink("bin/sh", Meta::root(0o777, 0), "hello").unwrap();
        w.append_char_device("console", Meta::root(0o600, 0), 5, 1).unwrap();
        let archive = w.finish().unwrap();

        let dir = scratch("extract");
        let mut child = Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(fs::read(dir.join("bin/hello")).unwrap(), b"hi\n");
        assert_eq!(fs::read_link(dir.join("bin/sh")).unwrap(), Path::new("hello"));
        assert_eq!(fs::metadata(dir.join("bin/hello")).unwrap().permissions().mode() & 0o7777, 0o4755);

        let listing = gnu_cpio_list(&archive);
        assert!(listing.contains("-rwsr-xr-x   1 7        8"), "{listing}");
        assert!(listing.contains("crw-------   1 0        0          5,   1"), "{listing}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn trees_are_sorted_and_byte_identical_across_runs() {
        let dir = scratch("tree");
        fs::create_dir_all(dir.join("b/c")).unwrap();
        fs::write(dir.join("b/c/z"), b"zz").unwrap();
        fs::write(dir.join("a"), b"a").unwrap();
        symlink("b/c/z", dir.join("link")).unwrap();
        let pack = || {
            let mut w = CpioWriter::new(Vec::new());
            w.append_tree(&dir, "root", 1_700_000_000).unwrap();
            w.finish().unwrap()
        };
        let first = pack();
        // A changed on-disk mtime must not change the archive.
        fs::write(dir.join("a"), b"a").unwrap();
        assert_eq!(first, pack());
        let names: Vec<_> =
            gnu_cpio_list(&first).lines().map(|l| l.split_whitespace().nth(8).unwrap().to_owned()).collect();
        assert_eq!(names, ["root/a", "root/b", "root/b/c", "root/b/c/z", "root/link"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hard_links_survive_extraction() {
        let dir = scratch("links");
        fs::create_dir_all(dir.join("tree/bin")).unwrap();
        fs::write(dir.join("tree/bin/busybox"), b"one binary").unwrap();
        fs::hard_link(dir.join("tree/bin/busybox"), dir.join("tree/bin/sh")).unwrap();
        fs::hard_link(dir.join("tree/bin/busybox"), dir.join("tree/bin/ls")).unwrap();
        let pack = || {
            let mut w = CpioWriter::new(Vec::new());
            w.append_tree(&dir.join("tree"), "", 0).unwrap();
            w.finish().unwrap()
        };
        let archive = pack();
        assert_eq!(archive, pack(), "hard links must not make the archive vary");
        // Data once, with the last link; the three entries share an inode and count 3 links.
        assert_eq!(archive.windows(10).filter(|w| w == b"one binary").count(), 1);
        let listing = gnu_cpio_list(&archive);
        assert_eq!(listing.lines().filter(|l| l.starts_with("-rw-r--r--   3 ")).count(), 3, "{listing}");

        fs::create_dir_all(dir.join("out")).unwrap();
        let mut child = Command::new("cpio")
            .args(["-i", "-d", "--quiet"])
            .current_dir(dir.join("out"))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        assert!(child.wait().unwrap().success());
        let ino = |name: &str| fs::metadata(dir.join("out/bin").join(name)).unwrap().ino();
        assert_eq!(ino("busybox"), ino("sh"));
        assert_eq!(ino("busybox"), ino("ls"));
        assert_eq!(fs::read(dir.join("out/bin/sh")).unwrap(), b"one binary");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_absolute_and_empty_names() {
        let mut w = CpioWriter::new(Vec::new());
        for name in ["/etc/passwd", ""] {
            let err = w.append_file(name, Meta::root(0o644, 0), b"").unwrap_err();
            assert!(matches!(err, CpioError::BadName { .. }), "{err}");
        }
    }

    #[test]
    fn splits_device_numbers_like_the_kernel() {
        assert_eq!(dev_numbers(0x0501), (5, 1));
        // major 259, minor 300: the large-number encoding.
        let rdev = (259u64 & 0xfff) << 8 | (300u64 & 0xff) | ((300u64 & !0xff) << 12);
        assert_eq!(dev_numbers(rdev), (259, 300));
    }
}
