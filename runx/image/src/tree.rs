//! Reading a folder tree through file descriptors, for packing it into a guest image. Each
//! entry is opened relative to its parent folder's descriptor without following symlinks, and
//! what is packed of it (type, size, owner, content, link target) comes from that descriptor:
//! an entry swapped for a symlink between listing and reading is packed as the symlink it now
//! is, never followed out of the tree.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{open, openat, readlinkat, OFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is a symlink: name the folder itself")]
    RootIsSymlink { path: PathBuf },
}

/// One entry of a tree, held open as an `O_PATH` descriptor.
pub struct Entry {
    /// The path relative to the tree's root; empty for the root itself.
    pub rel: PathBuf,
    /// The host path, for messages.
    pub path: PathBuf,
    /// fstat of the descriptor.
    pub meta: Metadata,
    fd: File,
}

impl Entry {
    /// The content of a regular file: the very inode this entry stands for, whatever its
    /// name points at now.
    pub fn open(&self) -> Result<File, TreeError> {
        reopen(&self.fd).map_err(|source| TreeError::Read { path: self.path.clone(), source })
    }

    /// The target of a symlink, read from the link this entry stands for.
    pub fn read_link(&self) -> Result<OsString, TreeError> {
        readlinkat(Some(self.fd.as_raw_fd()), "")
            .map_err(|e| TreeError::Read { path: self.path.clone(), source: e.into() })
    }
}

/// Opens a regular file held as an `O_PATH` descriptor for reading, through its magic link in
/// /proc: that reaches the inode the descriptor holds, so nothing is resolved by name again and
/// no device or pipe swapped in meanwhile is ever opened.
pub fn reopen(fd: &impl AsRawFd) -> std::io::Result<File> {
    File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The folder `path` as an `O_PATH` descriptor; a symlink is refused, not followed.
pub fn open_dir(path: &Path) -> Result<File, TreeError> {
    match open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(owned(fd)),
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) if is_symlink(path) => {
            Err(TreeError::RootIsSymlink { path: path.to_owned() })
        }
        Err(e) => Err(TreeError::Read { path: path.to_owned(), source: e.into() }),
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()).unwrap_or(false)
}

fn owned(fd: std::os::fd::RawFd) -> File {
    // SAFETY: `fd` was just returned by a successful open and is owned by nothing else.
    File::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Calls `visit` for the folder `root` (with an empty `rel`) and everything under it, depth
/// first with names sorted, each folder before what it holds.
pub fn walk<E: From<TreeError>>(root: &Path, mut visit: impl FnMut(&Entry) -> Result<(), E>) -> Result<(), E> {
    let fd = open_dir(root)?;
    let meta = fd.metadata().map_err(|source| TreeError::Read { path: root.to_owned(), source })?;
    let entry = Entry { rel: PathBuf::new(), path: root.to_owned(), meta, fd };
    visit(&entry)?;
    walk_below(&entry, &mut visit)
}

fn read_err(path: &Path) -> impl FnOnce(Errno) -> TreeError + '_ {
    move |e| TreeError::Read { path: path.to_owned(), source: e.into() }
}

fn walk_below<E: From<TreeError>>(dir: &Entry, visit: &mut impl FnMut(&Entry) -> Result<(), E>) -> Result<(), E> {
    let mut listing = Dir::openat(
        Some(dir.fd.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(read_err(&dir.path))?;
    let mut names = Vec::new();
    for name in listing.iter() {
        let name = name.map_err(read_err(&dir.path))?;
        let name = OsStr::from_bytes(name.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_owned());
        }
    }
    drop(listing);
    names.sort();
    for name in names {
        let path = dir.path.join(&name);
        let fd = openat(
            Some(dir.fd.as_raw_fd()),
            name.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(read_err(&path))?;
        let fd = owned(fd);
        let meta = fd.metadata().map_err(|source| TreeError::Read { path: path.clone(), source })?;
        let entry = Entry { rel: dir.rel.join(&name), path, meta, fd };
        visit(&entry)?;
        if entry.meta.is_dir() {
            walk_below(&entry, visit)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runx-tree-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn walks_sorted_depth_first_without_following_symlinks() {
        let dir = scratch("walk");
        std::fs::create_dir_all(dir.join("tree/b")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(dir.join("outside/secret"), b"host").unwrap();
        std::fs::write(dir.join("tree/b/file"), b"guest").unwrap();
        symlink(dir.join("outside"), dir.join("tree/a")).unwrap();
        let mut seen = Vec::new();
        walk(&dir.join("tree"), |entry| -> Result<(), TreeError> {
            let what = if entry.meta.file_type().is_symlink() {
                format!("-> {}", entry.read_link()?.to_string_lossy())
            } else if entry.meta.is_file() {
                let mut content = String::new();
                entry.open()?.read_to_string(&mut content).unwrap();
                content
            } else {
                "dir".into()
            };
            seen.push(format!("{} {what}", entry.rel.display()));
            Ok(())
        })
        .unwrap();
        let outside = format!("a -> {}", dir.join("outside").display());
        assert_eq!(seen, [" dir", outside.as_str(), "b dir", "b/file guest"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_entry_swapped_for_a_symlink_after_listing_is_not_followed() {
        let dir = scratch("swap");
        std::fs::create_dir_all(dir.join("tree")).unwrap();
        std::fs::write(dir.join("secret"), b"host file").unwrap();
        std::fs::write(dir.join("tree/app"), b"guest file").unwrap();
        let mut read = Vec::new();
        walk(&dir.join("tree"), |entry| -> Result<(), TreeError> {
            if entry.meta.is_file() {
                // The name now points at a host file: the entry still reads what was listed.
                std::fs::remove_file(&entry.path).unwrap();
                symlink(dir.join("secret"), &entry.path).unwrap();
                entry.open()?.read_to_end(&mut read).unwrap();
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(read, b"guest file");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_root_that_is_a_symlink_is_refused() {
        let dir = scratch("root");
        std::fs::create_dir_all(dir.join("real")).unwrap();
        symlink("real", dir.join("link")).unwrap();
        let err = walk(&dir.join("link"), |_| -> Result<(), TreeError> { Ok(()) }).unwrap_err();
        assert!(matches!(err, TreeError::RootIsSymlink { .. }), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
