//! `boot.scr` generation: a checked description of the board and images in,
//! u-boot commands that start Xen (+ dom0, + dom0less guests) out.

pub mod board;
mod chosen;
pub mod config;
mod images;
pub mod layout;
pub mod probe;
mod script;

use std::path::{Path, PathBuf};

pub use script::{generate, Generated, PlacedImage};

/// Why a boot script could not be generated. Nothing is written in that case.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("unknown board {name:?}: use one of {known}, or the path of a board file ending in .toml")]
    UnknownBoard { name: String, known: String },
    #[error("board {origin}: {why}")]
    BadBoard { origin: String, why: String },
    #[error("boot config {path}: {why}")]
    BadConfig { path: PathBuf, why: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{role} {path} does not exist: build it or fix the path in the boot config")]
    MissingFile { role: String, path: PathBuf },
    #[error("{role} {path} is {found}, but {expected}")]
    WrongType { role: String, path: PathBuf, found: probe::Kind, expected: String },
    #[error("{role} ends at {end:#x}, past the end of the board's load window {:#x}..{:#x}: use smaller images or a board file with a larger window", window.start, window.end)]
    DoesNotFit { role: String, end: u64, window: board::LoadWindow },
    #[error("{role} at {start:#x}..{end:#x} is outside the board's load window {:#x}..{:#x}", window.start, window.end)]
    OutsideWindow { role: String, start: u64, end: u64, window: board::LoadWindow },
    #[error("{second} at {start:#x}..{end:#x} would overlap {first}: move one of them")]
    Overlap { first: String, second: String, start: u64, end: u64 },
    #[error("{role} is pinned at {address:#x}, which is not 2 MiB-aligned")]
    Misaligned { role: String, address: u64 },
    #[error("{0}")]
    Invalid(String),
}

/// Reads a boot config file; relative image paths are relative to its folder.
pub fn read_config(path: &Path) -> Result<config::BootConfig, BootError> {
    let text = std::fs::read_to_string(path).map_err(|source| BootError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text).map_err(|e| BootError::BadConfig { path: path.to_owned(), why: e.to_string() })
}
