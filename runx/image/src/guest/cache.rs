//! Packed container roots, kept per content: the second start of the same
//! image reuses its archive instead of packing the root again. The cache has
//! a size bound; the least recently used archives go first, but never one in use. The cache
//! folder is 0700 and its archives 0600: they hold whole container roots.

use std::fs::{self, DirBuilder, File};
use std::io::BufWriter;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
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
    Ok(hex::encode(hash.finalize()))
}

/// An archive of the cache in use: while this lives (it holds a shared flock on the archive),
/// eviction leaves the archive's file alone, so `path` stays readable.
pub struct CachedArchive {
    path: PathBuf,
    /// This call packed it (the cache had no archive of this content).
    packed: bool,
    _lock: Flock<File>,
}

impl CachedArchive {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn packed(&self) -> bool {
        self.packed
    }
}

/// Whether `path` still names the file `file` has open.
fn still_named(file: &File, path: &Path) -> std::io::Result<bool> {
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

impl ArchiveCache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes }
    }

    /// The archive of `tree` (see `write_rootfs`), packed only if this content has none yet.
    pub fn rootfs_archive(&self, tree: &Path, mtime: u32) -> Result<CachedArchive, GuestImageError> {
        self.make_dir()?;
        let path = self.dir.join(format!("{}.cpio.gz", tree_key(tree)?));
        loop {
            if let Some(archive) = self.use_archive(&path)? {
                // Mark it used, for the eviction order.
                let _ = File::options().append(true).open(&path).and_then(|f| f.set_modified(SystemTime::now()));
                return Ok(archive);
            }
            if let Some(archive) = self.pack(tree, mtime, &path)? {
                self.evict()?;
                return Ok(archive);
            }
        }
    }

    /// The cache's folder, private to its owner: archives hold whole container roots.
    fn make_dir(&self) -> Result<(), GuestImageError> {
        DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(read_err(&self.dir))?;
        let md = fs::metadata(&self.dir).map_err(read_err(&self.dir))?;
        if md.mode() & 0o777 != 0o700 {
            // A cache folder made before it was private.
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(read_err(&self.dir))?;
        }
        Ok(())
    }

    /// The archive at `path`, locked for use; None if there is none.
    fn use_archive(&self, path: &Path) -> Result<Option<CachedArchive>, GuestImageError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(path)(e)),
        };
        let lock = Flock::lock(file, FlockArg::LockShared).map_err(|(_, e)| read_err(path)(e.into()))?;
        // Eviction removes an archive while it holds the exclusive lock: one removed before this
        // lock was taken is no longer the cache's.
        if !still_named(&lock, path).map_err(read_err(path))? {
            return Ok(None);
        }
        Ok(Some(CachedArchive { path: path.to_owned(), packed: false, _lock: lock }))
    }

    /// Packs `tree` and publishes it at `path`, locked for use; None if another runtime
    /// published it first.
    fn pack(&self, tree: &Path, mtime: u32, path: &Path) -> Result<Option<CachedArchive>, GuestImageError> {
        // Several runtimes may pack the same image at once: each writes a partial file of its own.
        let (tmp, file) = self.partial_file(path)?;
        let result = (|| {
            let lock = Flock::lock(file.try_clone().map_err(read_err(&tmp))?, FlockArg::LockShared)
                .map_err(|(_, e)| read_err(&tmp)(e.into()))?;
            write_rootfs(tree, mtime, BufWriter::new(file))?;
            // A link, not a rename: an archive once published is never replaced under its name.
            match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(Some(CachedArchive { path: path.to_owned(), packed: true, _lock: lock })),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(read_err(path)(e)),
            }
        })();
        let _ = fs::remove_file(&tmp);
        result
    }

    fn partial_file(&self, path: &Path) -> Result<(PathBuf, File), GuestImageError> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        loop {
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let tmp = self.dir.join(format!(".{name}.partial{}-{n}", std::process::id()));
            match File::options().write(true).create_new(true).mode(0o600).open(&tmp) {
                Ok(file) => return Ok((tmp, file)),
                // One left by a runtime that died, with a pid that is now this one's.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(read_err(&tmp)(e)),
            }
        }
    }

    /// Removes the least recently used archives until the cache fits its bound, skipping those
    /// in use (locked by a `CachedArchive`).
    fn evict(&self) -> Result<(), GuestImageError> {
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
            if remove_unused(&path)? {
                total -= len;
            }
        }
        Ok(())
    }

    /// Removes an archive this runtime packed for a container whose create then failed, unless
    /// another create is using it meanwhile: a failed create leaves no cache entry of its own.
    pub fn discard(path: &Path) -> Result<(), GuestImageError> {
        remove_unused(path).map(drop)
    }
}

/// Removes the archive at `path` unless it is in use; true if it is gone.
fn remove_unused(path: &Path) -> Result<bool, GuestImageError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(read_err(path)(e)),
    };
    let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else { return Ok(false) };
    // Under the exclusive lock the name cannot change hands: check it is still this file.
    if !still_named(&lock, path).map_err(read_err(path))? {
        return Ok(false);
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(read_err(path)(e)),
        _ => Ok(true),
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
        let first = cache.rootfs_archive(&root, 0).unwrap().path().to_owned();
        let packed_at = fs::metadata(&first).unwrap().ino();
        let second = cache.rootfs_archive(&root, 0).unwrap().path().to_owned();
        assert_eq!(first, second);
        assert_eq!(fs::metadata(&second).unwrap().ino(), packed_at, "the archive was packed again");

        // Same size, and possibly the same mtime: only the content differs.
        fs::write(root.join("bin/app"), b"version 2").unwrap();
        let changed = cache.rootfs_archive(&root, 0).unwrap().path().to_owned();
        assert_ne!(changed, first, "changed content must not reuse the old archive");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stays_within_its_bound_dropping_the_least_recently_used() {
        let dir = scratch("bound");
        let cache = ArchiveCache::new(dir.join("cache"), 1);
        let a = cache.rootfs_archive(&tree(&dir, "a", b"a"), 0).unwrap().path().to_owned();
        let b = cache.rootfs_archive(&tree(&dir, "b", b"b"), 0).unwrap();
        // A bound below one archive keeps just the newest...
        assert!(!a.exists() && b.path().exists());
        // ...and any in use.
        let c = cache.rootfs_archive(&tree(&dir, "c", b"c"), 0).unwrap();
        assert!(b.path().exists() && c.path().exists());
        drop(b);
        drop(c);
        let d = cache.rootfs_archive(&tree(&dir, "d", b"d"), 0).unwrap();
        assert_eq!(fs::read_dir(dir.join("cache")).unwrap().count(), 1, "only {} is left", d.path().display());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_archive_in_use_survives_eviction_by_parallel_packs() {
        let dir = scratch("race");
        // Every pack evicts all the archives it may.
        let cache = ArchiveCache::new(dir.join("cache"), 1);
        // Two threads per tree: they also race to publish the same archive.
        let trees: Vec<PathBuf> = (0..3).map(|i| tree(&dir, &format!("t{i}"), format!("app {i}").as_bytes())).collect();
        std::thread::scope(|s| {
            for root in trees.iter().chain(&trees) {
                let cache = &cache;
                s.spawn(move || {
                    for _ in 0..10 {
                        let archive = cache.rootfs_archive(root, 0).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        let bytes = fs::read(archive.path())
                            .unwrap_or_else(|e| panic!("{} was evicted while in use: {e}", archive.path().display()));
                        assert!(bytes.starts_with(b"\x1f\x8b"));
                    }
                });
            }
        });
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_discarded_archive_goes_unless_in_use() {
        let dir = scratch("discard");
        let tree = tree(&dir, "a", b"alpha");
        let cache = ArchiveCache::new(dir.join("cache"), 1 << 20);
        let first = cache.rootfs_archive(&tree, 0).unwrap();
        assert!(first.packed());
        let second = cache.rootfs_archive(&tree, 0).unwrap();
        assert!(!second.packed());
        let path = first.path().to_owned();
        ArchiveCache::discard(&path).unwrap();
        assert!(path.exists(), "in use by two creates");
        drop((first, second));
        ArchiveCache::discard(&path).unwrap();
        assert!(!path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_cache_is_private_to_its_owner() {
        let dir = scratch("private");
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        // A folder left by an older runx, open to all.
        fs::create_dir_all(dir.join("old")).unwrap();
        fs::set_permissions(dir.join("old"), fs::Permissions::from_mode(0o755)).unwrap();
        let root = tree(&dir, "a", b"a");
        for folder in ["old", "new/cache"] {
            let cache = ArchiveCache::new(dir.join(folder), 1 << 30);
            let archive = cache.rootfs_archive(&root, 0).unwrap();
            assert_eq!(mode(&dir.join(folder)), 0o700, "{folder}");
            assert_eq!(mode(archive.path()), 0o600, "{folder}");
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
