//! Lab artifacts keyed by their inputs: a second run with the same inputs
//! reuses them, `--fresh` rebuilds them.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::progress::{self, Step};

/// Inputs that determine an artifact; two equal keys mean interchangeable artifacts.
#[derive(Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new(recipe_version: &str) -> Self {
        let mut key = Self::default();
        key.add(recipe_version);
        key
    }

    pub fn add(&mut self, part: impl AsRef<[u8]>) -> &mut Self {
        let part = part.as_ref();
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part);
        self
    }

    fn hex(&self) -> String {
        hex::encode(&self.0.clone().finalize()[..8])
    }
}

pub struct Cache {
    root: PathBuf,
    fresh: bool,
    /// What this run built, so that `--fresh` rebuilds each artifact once.
    built: RefCell<HashSet<PathBuf>>,
}

impl Cache {
    pub fn new(root: PathBuf, fresh: bool) -> Self {
        Self { root, fresh, built: RefCell::default() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// Removes `name`'s artifacts built from other inputs: only the newest is ever used.
    fn remove_older(&self, name: &str, keep: &Path) -> Result<()> {
        let prefix = format!("{name}-");
        for entry in fs::read_dir(&self.root)? {
            let path = entry?.path();
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            let same_artifact = file_name.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('-'));
            if same_artifact && path != keep && path.is_dir() {
                fs::remove_dir_all(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Returns the directory for `name` under `key`, building it with `build`
    /// unless a complete one exists. `build` fills an empty directory; only a
    /// build that succeeds is kept.
    pub fn get_or_build(&self, name: &str, key: &Key, build: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        let dir = self.root.join(format!("{name}-{}", key.hex()));
        if dir.is_dir() && (!self.fresh || self.built.borrow().contains(&dir)) {
            progress::cached(name, &dir);
            return Ok(dir);
        }
        let partial = dir.with_extension("partial");
        for old in [&dir, &partial] {
            if old.exists() {
                fs::remove_dir_all(old).with_context(|| format!("cannot remove {}", old.display()))?;
            }
        }
        fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
        let step = Step::start(format!("building {name}"));
        build(&partial).with_context(|| format!("building {name} in {} failed", partial.display()))?;
        fs::rename(&partial, &dir).with_context(|| format!("cannot move {} into place", dir.display()))?;
        self.remove_older(name, &dir)?;
        step.done();
        self.built.borrow_mut().insert(dir.clone());
        Ok(dir)
    }
}
