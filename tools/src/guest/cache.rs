//! Packed container roots, kept per content: the second start of the same
//! image reuses its archive instead of packing the root again. The cache has
//! a size bound; the least recently used archives go first.

use std::fs;
use std::io::BufWriter;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::{read_err, write_rootfs, GuestImageError};
use crate::tree;

pub struct ArchiveCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// A digest of everything in `tree` that lands in its archive: names, types, modes, owners,
/// sizes, link targets, device numbers and file contents. Contents, not only sizes and times:
/// reproducible images give different files the same size and timestamp. Read as the archive
/// is, through descriptors (`tree::walk`).
pub(super) fn tree_key(tree: &Path) -> Result<String, GuestImageError> {
    let mut hash = Sha256::new();
    tree::walk(tree, |entry| -> Result<(), GuestImageError> {
        let md = &entry.meta;
        hash.update(entry.rel.as_os_str().as_encoded_bytes());
        hash.update([0]);
        for field in [u64::from(md.mode()), u64::from(md.uid()), u64::from(md.gid()), md.size(), md.rdev()] {
            hash.update(field.to_le_bytes());
        }
        if md.file_type().is_symlink() {
            hash.update(entry.read_link()?.as_encoded_bytes());
        } else if md.is_file() {
            std::io::copy(&mut entry.open()?, &mut hash).map_err(read_err(&entry.path))?;
        }
        Ok(())
    })?;
    Ok(crate::hex::encode(&hash.finalize()))
}

impl ArchiveCache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes }
    }

    /// The archive of `tree` (see `write_rootfs`), packed only if this content has none yet.
    pub fn rootfs_archive(&self, tree: &Path, mtime: u32) -> Result<PathBuf, GuestImageError> {
        fs::create_dir_all(&self.dir).map_err(read_err(&self.dir))?;
        let path = self.dir.join(format!("{}.cpio.gz", tree_key(tree)?));
        if path.is_file() {
            // Mark it used, for the eviction order.
            let _ = fs::File::options().append(true).open(&path).and_then(|f| f.set_modified(SystemTime::now()));
            return Ok(path);
        }
        // Several runtimes may pack the same image at once: each writes its own partial file and
        // the renames race harmlessly (same content).
        let tmp = self.dir.join(format!(
            ".{}.partial{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let file = fs::File::create(&tmp).map_err(read_err(&tmp))?;
        if let Err(e) = write_rootfs(tree, mtime, BufWriter::new(file)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(read_err(&path))?;
        self.evict(&path)?;
        Ok(path)
    }

    /// Removes the least recently used archives until the cache fits its bound; never `keep`.
    fn evict(&self, keep: &Path) -> Result<(), GuestImageError> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err(&self.dir))? {
            let entry = entry.map_err(read_err(&self.dir))?;
            // Another process's partial archive is not the cache's yet; one that another process
            // just evicted is gone.
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(md) = entry.metadata() else { continue };
            if md.is_file() {
                entries.push((md.modified().unwrap_or(SystemTime::UNIX_EPOCH), md.len(), entry.path()));
            }
        }
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path != keep {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(read_err(&path)(e)),
                    _ => total -= len,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runx-archive-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn tree(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let root = dir.join(name);
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/app"), content).unwrap();
        root
    }

    #[test]
    fn packs_each_content_once() {
        let dir = scratch("once");
        let cache = ArchiveCache::new(dir.join("cache"), 1 << 30);
        let root = tree(&dir, "a", b"version 1");
        let first = cache.rootfs_archive(&root, 0).unwrap();
        let packed_at = fs::metadata(&first).unwrap().ino();
        let second = cache.rootfs_archive(&root, 0).unwrap();
        assert_eq!(first, second);
        assert_eq!(fs::metadata(&second).unwrap().ino(), packed_at, "the archive was packed again");

        // Same size, and possibly the same mtime: only the content differs.
        fs::write(root.join("bin/app"), b"version 2").unwrap();
        let changed = cache.rootfs_archive(&root, 0).unwrap();
        assert_ne!(changed, first, "changed content must not reuse the old archive");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stays_within_its_bound_dropping_the_least_recently_used() {
        let dir = scratch("bound");
        let cache = ArchiveCache::new(dir.join("cache"), 1);
        let a = cache.rootfs_archive(&tree(&dir, "a", b"a"), 0).unwrap();
        let b = cache.rootfs_archive(&tree(&dir, "b", b"b"), 0).unwrap();
        // A bound below one archive keeps just the newest.
        assert!(!a.exists() && b.exists());
        fs::remove_dir_all(dir).unwrap();
    }
}
