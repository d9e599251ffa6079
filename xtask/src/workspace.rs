//! Where the workspace is, for tasks that build or read files in it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The workspace root (the parent of xtask/).
pub fn root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask lives inside the workspace")
}
