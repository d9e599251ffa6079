//! Resolving a path that a container names (its kernel, its ramdisk) inside its own rootfs,
//! so that an image can never point runx at a file of the host's.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfineError {
    #[error("{what} {path:?} must be an absolute path inside the container's rootfs")]
    NotAbsolute { what: &'static str, path: String },
    #[error("{what} {path:?} leaves the container's rootfs (through '..' or a symlink to {target:?}): name a file inside the image")]
    Escapes { what: &'static str, path: String, target: String },
    #[error("{what} {path:?} does not exist in the container's rootfs")]
    Missing { what: &'static str, path: String },
    #[error("{what} {path:?} is not a regular file in the container's rootfs (a device, folder or pipe is refused)")]
    NotFile { what: &'static str, path: String },
    #[error("{what} {path:?}: more than 40 symlinks")]
    Loop { what: &'static str, path: String },
}

/// The host path of `path` as seen from inside `rootfs`: every symlink is followed inside the
/// rootfs, and a relative symlink or `..` that would climb above it, or an absolute symlink
/// (which inside the guest would mean something else than on the host), is refused.
pub fn regular_file(rootfs: &Path, path: &str, what: &'static str) -> Result<PathBuf, ConfineError> {
    if !path.starts_with('/') {
        return Err(ConfineError::NotAbsolute { what, path: path.to_owned() });
    }
    let escapes = |target: &str| ConfineError::Escapes { what, path: path.to_owned(), target: target.to_owned() };
    let mut pending: Vec<String> = components(path).into_iter().rev().collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            if resolved.pop().is_none() {
                return Err(escapes(path));
            }
            continue;
        }
        let candidate = rootfs.join(resolved.iter().collect::<PathBuf>()).join(&part);
        let meta =
            std::fs::symlink_metadata(&candidate).map_err(|_| ConfineError::Missing { what, path: path.to_owned() })?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return Err(ConfineError::Loop { what, path: path.to_owned() });
            }
            let target =
                std::fs::read_link(&candidate).map_err(|_| ConfineError::Missing { what, path: path.to_owned() })?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                return Err(escapes(&target));
            }
            pending.extend(components(&target).into_iter().rev());
            continue;
        }
        resolved.push(part);
    }
    let host = rootfs.join(resolved.iter().collect::<PathBuf>());
    match std::fs::symlink_metadata(&host) {
        Ok(meta) if meta.is_file() => Ok(host),
        Ok(_) => Err(ConfineError::NotFile { what, path: path.to_owned() }),
        Err(_) => Err(ConfineError::Missing { what, path: path.to_owned() }),
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
    use std::os::unix::fs::symlink;

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
        dir
    }

    #[test]
    fn follows_symlinks_inside_the_rootfs() {
        let root = rootfs();
        let want = root.join("boot/Image");
        assert_eq!(regular_file(&root, "/boot/Image", "kernel").unwrap(), want);
        assert_eq!(regular_file(&root, "/boot/relative", "kernel").unwrap(), want);
        assert_eq!(regular_file(&root, "/boot/sub/up", "kernel").unwrap(), want);
        assert_eq!(regular_file(&root, "/boot/sub/../Image", "kernel").unwrap(), want);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn refuses_escapes_devices_and_missing_files() {
        let root = rootfs();
        let check = |path: &str| regular_file(&root, path, "kernel").unwrap_err();
        assert!(matches!(check("/../etc/passwd"), ConfineError::Escapes { .. }));
        assert!(matches!(check("/boot/absolute"), ConfineError::Escapes { .. }));
        assert!(matches!(check("/boot/climb"), ConfineError::Escapes { .. }));
        assert!(matches!(check("boot/Image"), ConfineError::NotAbsolute { .. }));
        assert!(matches!(check("/boot"), ConfineError::NotFile { .. }));
        assert!(matches!(check("/boot/none"), ConfineError::Missing { .. }));
        assert!(matches!(check("/boot/loop"), ConfineError::Loop { .. }));
        std::fs::remove_dir_all(root).unwrap();
    }
}
