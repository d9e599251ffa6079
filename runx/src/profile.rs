//! Named profiles: xl fragments the admin keeps in a host folder (`profiles_dir`, one
//! `NAME.cfg` each) for device assignment and real-time placement. A container selects them
//! with the `io.runx.profile` annotation, and gets only those `allowed_profiles` lists.

use std::path::PathBuf;

use runx_xl::fragment::{Fragment, FragmentError};

use crate::host_config::HostConfig;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile name {0:?} is not valid: a profile is named by its file in profiles_dir (letters, digits, '.', '_', '-'), e.g. ttc for /etc/runx/profiles/ttc.cfg")]
    BadName(String),
    #[error("profile {0:?} is not allowed on this host: the admin lists the profiles containers may use in allowed_profiles of /etc/runx/config.toml")]
    NotAllowed(String),
    #[error("profile {name:?} is allowed but {path} does not exist: write it, or drop it from allowed_profiles")]
    Missing { name: String, path: PathBuf },
    #[error("cannot read profile {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("profile {path}, {source}")]
    Parse { path: PathBuf, source: FragmentError },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Reads the profile `name` if the host allows it.
pub fn load(host: &HostConfig, name: &str) -> Result<Fragment, ProfileError> {
    if !valid_name(name) {
        return Err(ProfileError::BadName(name.to_owned()));
    }
    if !host.allowed_profiles.iter().any(|p| p == name) {
        return Err(ProfileError::NotAllowed(name.to_owned()));
    }
    let path = host.profiles_dir.join(format!("{name}.cfg"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProfileError::Missing { name: name.to_owned(), path })
        }
        Err(source) => return Err(ProfileError::Read { path, source }),
    };
    Fragment::parse(&text).map_err(|source| ProfileError::Parse { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(tag: &str) -> HostConfig {
        let dir = std::env::temp_dir().join(format!("runx-profiles-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rt.cfg"), "cpus = \"1\"\nmemory = 48\n").unwrap();
        std::fs::write(dir.join("raw.cfg"), "extra = \"init=/bin/sh\"\n").unwrap();
        HostConfig {
            profiles_dir: dir,
            allowed_profiles: vec!["rt".into(), "raw".into(), "gone".into()],
            ..HostConfig::default()
        }
    }

    #[test]
    fn loads_an_allowed_profile() {
        let host = host("ok");
        let fragment = load(&host, "rt").unwrap();
        assert_eq!((fragment.placement.cpus.as_deref(), fragment.memory_mib), (Some("1"), Some(48)));
        std::fs::remove_dir_all(host.profiles_dir).unwrap();
    }

    #[test]
    fn refuses_paths_unlisted_missing_and_raw_profiles() {
        let host = host("bad");
        for name in ["../rt", "/etc/runx/profiles/rt", ".hidden", ""] {
            assert!(matches!(load(&host, name), Err(ProfileError::BadName(_))), "{name}");
        }
        std::fs::write(host.profiles_dir.join("other.cfg"), "vcpus = 2\n").unwrap();
        assert!(matches!(load(&host, "other"), Err(ProfileError::NotAllowed(_))));
        assert!(matches!(load(&host, "gone"), Err(ProfileError::Missing { .. })));
        let err = load(&host, "raw").unwrap_err().to_string();
        assert!(err.contains("raw.cfg, line 1: extra is not a setting runx takes"), "{err}");
        std::fs::remove_dir_all(host.profiles_dir).unwrap();
    }
}
