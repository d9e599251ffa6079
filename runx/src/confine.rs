//! Opening a file that a container names (its kernel, its ramdisk) inside its own rootfs, so
//! that an image can never point runx at a file of the host's. The file is opened once,
//! relative to a descriptor of the rootfs, and runx reads that descriptor: nothing resolves the
//! name again, so a file swapped for a symlink afterwards changes nothing.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{open, openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("{what} {path:?} must be an absolute path inside the container's rootfs")]
    NotAbsolute { what: &'static str, path: String },
    #[error("{what} {path:?} leaves the container's rootfs (through '..', or a symlink that is absolute or climbs out of it): name a file inside the image")]
    Escapes { what: &'static str, path: String },
    #[error("{what} {path:?} does not exist in the container's rootfs")]
    Missing { what: &'static str, path: String },
    #[error("{what} {path:?} is not a regular file in the container's rootfs (a device, folder or pipe is refused)")]
    NotFile { what: &'static str, path: String },
    #[error("{what} {path:?}: more than 40 symlinks")]
    Loop { what: &'static str, path: String },
    #[error("cannot open {what} {path:?} in the container's rootfs: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
}

/// How many symlinks one lookup may follow, as in the kernel.
const MAX_LINKS: usize = 40;

/// The regular file `path` inside `rootfs`, open for reading. Every symlink is followed inside
/// the rootfs; a relative symlink or `..` that would climb above it, or an absolute symlink
/// (which inside the guest would mean something else than on the host), is refused.
pub fn regular_file(rootfs: &Path, path: &str, what: &'static str) -> Result<File, ConfineError> {
    if !path.starts_with('/') {
        return Err(ConfineError::NotAbsolute { what, path: path.to_owned() });
    }
    let root = open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| ConfineError::Io { what, path: path.to_owned(), source: e.into() })?;
    let root = owned(root);
    let fd = open_beneath(&root, path, what)?;
    let file = File::from(fd);
    let md = file.metadata().map_err(|source| ConfineError::Io { what, path: path.to_owned(), source })?;
    if !md.is_file() {
        return Err(ConfineError::NotFile { what, path: path.to_owned() });
    }
    runx_image::tree::reopen(&file).map_err(|source| ConfineError::Io { what, path: path.to_owned(), source })
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `path` under `root` as an `O_PATH` descriptor: by openat2(RESOLVE_BENEATH) where the kernel
/// has it (Linux 5.6), else component by component.
fn open_beneath(root: &OwnedFd, path: &str, what: &'static str) -> Result<OwnedFd, ConfineError> {
    let relative = match path.trim_start_matches('/') {
        "" => ".",
        relative => relative,
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let found = loop {
        match openat2(root.as_raw_fd(), relative, how) {
            // A rename elsewhere in the rootfs raced the lookup of a '..': look again.
            Err(Errno::EAGAIN) => continue,
            found => break found,
        }
    };
    let path = path.to_owned();
    match found {
        Ok(fd) => Ok(owned(fd)),
        Err(Errno::ENOSYS) => walk_beneath(root, &path, what),
        Err(Errno::EXDEV) => Err(ConfineError::Escapes { what, path }),
        Err(Errno::ELOOP) => Err(ConfineError::Loop { what, path }),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Err(ConfineError::Missing { what, path }),
        Err(e) => Err(ConfineError::Io { what, path, source: e.into() }),
    }
}

/// `open_beneath` for kernels without openat2: each component is opened with O_NOFOLLOW
/// relative to the folder before it, and a symlink's target is resolved the same way; `..`
/// goes back to a folder already open, never above `root`.
fn walk_beneath(root: &OwnedFd, path: &str, what: &'static str) -> Result<OwnedFd, ConfineError> {
    let fail = |e: Errno| match e {
        Errno::ENOENT | Errno::ENOTDIR => ConfineError::Missing { what, path: path.to_owned() },
        e => ConfineError::Io { what, path: path.to_owned(), source: e.into() },
    };
    let mut pending: Vec<String> = components(path).into_iter().rev().collect();
    // The folders entered below `root`, innermost last.
    let mut folders: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            if folders.pop().is_none() {
                return Err(ConfineError::Escapes { what, path: path.to_owned() });
            }
            continue;
        }
        let parent = folders.last().unwrap_or(root);
        let fd = openat(
            Some(parent.as_raw_fd()),
            part.as_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(fail)?;
        let fd = File::from(owned(fd));
        let md = fd.metadata().map_err(|source| ConfineError::Io { what, path: path.to_owned(), source })?;
        if md.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(ConfineError::Loop { what, path: path.to_owned() });
            }
            let target = readlinkat(Some(fd.as_raw_fd()), "").map_err(fail)?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                return Err(ConfineError::Escapes { what, path: path.to_owned() });
            }
            pending.extend(components(&target).into_iter().rev());
        } else if md.is_dir() {
            folders.push(fd.into());
        } else if pending.is_empty() {
            return Ok(fd.into());
        } else {
            return Err(ConfineError::Missing { what, path: path.to_owned() });
        }
    }
    match folders.pop() {
        Some(folder) => Ok(folder),
        None => root.try_clone().map_err(|source| ConfineError::Io { what, path: path.to_owned(), source }),
    }
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use super::*;

    fn rootfs() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("runx-confine-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("boot/sub")).unwrap();
        std::fs::write(dir.join("boot/Image"), b"kernel").unwrap();
        symlink("Image", dir.join("boot/relative")).unwrap();
        symlink("../../boot/Image", dir.join("boot/sub/up")).unwrap();
        symlink("/etc/passwd", dir.join("boot/absolute")).unwrap();
        symlink("../../../../etc/passwd", dir.join("boot/climb")).unwrap();
        symlink("loop", dir.join("boot/loop")).unwrap();
        nix::unistd::mkfifo(&dir.join("boot/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        dir
    }

    type Resolver = fn(&OwnedFd, &str, &'static str) -> Result<OwnedFd, ConfineError>;

    /// Both ways of resolving, openat2 and the walk for older kernels.
    const RESOLVERS: [(&str, Resolver); 2] = [("openat2", open_beneath), ("walk", walk_beneath)];

    fn content(root: &Path, resolve: Resolver, path: &str) -> Result<String, ConfineError> {
        let dir = owned(open(root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap());
        let file = File::from(resolve(&dir, path, "kernel")?);
        if !file.metadata().unwrap().is_file() {
            return Err(ConfineError::NotFile { what: "kernel", path: path.to_owned() });
        }
        let mut text = String::new();
        runx_image::tree::reopen(&file).unwrap().read_to_string(&mut text).unwrap();
        Ok(text)
    }

    #[test]
    fn follows_symlinks_inside_the_rootfs() {
        let root = rootfs();
        for (name, resolve) in RESOLVERS {
            for path in ["/boot/Image", "/boot/relative", "/boot/sub/up", "/boot/sub/../Image"] {
                assert_eq!(content(&root, resolve, path).unwrap(), "kernel", "{name}: {path}");
            }
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn refuses_escapes_devices_and_missing_files() {
        let root = rootfs();
        for (name, resolve) in RESOLVERS {
            let check = |path: &str| content(&root, resolve, path).unwrap_err();
            for path in ["/../etc/passwd", "/boot/absolute", "/boot/climb"] {
                assert!(matches!(check(path), ConfineError::Escapes { .. }), "{name}: {path}");
            }
            assert!(matches!(check("/boot"), ConfineError::NotFile { .. }), "{name}");
            assert!(matches!(check("/boot/fifo"), ConfineError::NotFile { .. }), "{name}");
            assert!(matches!(check("/boot/none"), ConfineError::Missing { .. }), "{name}");
            assert!(matches!(check("/boot/Image/x"), ConfineError::Missing { .. }), "{name}");
            assert!(matches!(check("/boot/loop"), ConfineError::Loop { .. }), "{name}");
        }
        let err = regular_file(&root, "boot/Image", "kernel").unwrap_err();
        assert!(matches!(err, ConfineError::NotAbsolute { .. }), "{err}");
        let err = regular_file(&root, "/boot/fifo", "kernel").unwrap_err();
        assert!(matches!(err, ConfineError::NotFile { .. }), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_file_opened_is_the_one_read_even_if_swapped_for_a_symlink() {
        let root = rootfs();
        let mut kernel = regular_file(&root, "/boot/Image", "kernel").unwrap();
        std::fs::remove_file(root.join("boot/Image")).unwrap();
        symlink("/etc/passwd", root.join("boot/Image")).unwrap();
        let mut text = String::new();
        kernel.read_to_string(&mut text).unwrap();
        assert_eq!(text, "kernel");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_rootfs_that_is_a_symlink_is_not_followed() {
        let root = rootfs();
        let link = root.with_extension("link");
        let _ = std::fs::remove_file(&link);
        symlink(&root, &link).unwrap();
        assert!(regular_file(&link, "/boot/Image", "kernel").is_err());
        std::fs::remove_file(link).unwrap();
        std::fs::remove_dir_all(root).unwrap();
    }
}
