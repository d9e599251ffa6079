//! Container ids name state directories under `--root`, so they must never
//! be able to address anything outside that directory.

use std::fmt;

/// Why a container id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidId {
    #[error("container id is empty: give the container a name")]
    Empty,
    #[error("container id {0:?} is longer than 1024 bytes: choose a shorter name")]
    TooLong(String),
    #[error("container id {0:?} may only contain letters, digits, '_', '+', '-' and '.' and must not be '.' or '..'")]
    BadCharacters(String),
}

/// A container id that is safe to use as a single path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// Checks `id` with runc's rules: `^[\w+\-\.]+$`, and never `.` or `..`.
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        if id.is_empty() {
            return Err(InvalidId::Empty);
        }
        if id.len() > 1024 {
            return Err(InvalidId::TooLong(id.to_owned()));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
        if id == "." || id == ".." || !id.chars().all(allowed) {
            return Err(InvalidId::BadCharacters(id.to_owned()));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["web", "a.b-c_d+e", "0123456789abcdef", "..x"] {
            assert_eq!(ContainerId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_ids_that_escape_the_state_root() {
        for id in [".", "..", "../etc", "a/b", "/abs", "a\0b", "sp ace", "ü"] {
            assert_eq!(ContainerId::parse(id), Err(InvalidId::BadCharacters(id.to_owned())), "{id:?}");
        }
        assert_eq!(ContainerId::parse(""), Err(InvalidId::Empty));
        let long = "x".repeat(1025);
        assert_eq!(ContainerId::parse(&long), Err(InvalidId::TooLong(long)));
    }

    #[test]
    fn errors_name_the_id_and_the_rule() {
        let msg = ContainerId::parse("a/b").unwrap_err().to_string();
        assert!(msg.contains("\"a/b\"") && msg.contains("may only contain"), "{msg}");
    }
}
