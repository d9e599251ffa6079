//! The OCI annotations runx reads, all under one prefix. The host config's allow-list decides
//! which of them a container may set; any other `io.runx.` annotation is refused.

use std::collections::HashMap;

use runx_launch::{RootfsMode, MIN_MEMORY_MIB};

pub use runx_launch::annotations::{
    ALL as KNOWN, ENV_KERNEL, ENV_RAMDISK, KERNEL, MEMORY, NETWORK, PREFIX, PROFILE, RAMDISK, ROOTFS, VCPUS,
};

/// All of them: an admin narrows the list in `allowed_annotations`.
pub const ALLOWED_BY_DEFAULT: &[&str] = KNOWN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnotationError {
    #[error("annotation {0} is not one runx knows: use one of {list}", list = KNOWN.join(", "))]
    Unknown(String),
    #[error("annotation {0} is not allowed on this host: the admin lists the allowed ones in allowed_annotations of /etc/runx/config.toml")]
    NotAllowed(String),
    #[error("annotation {key}={value:?}: {why}")]
    Invalid { key: String, value: String, why: &'static str },
    #[error("annotation {MEMORY}={0:?}: use MiB, at least {MIN_MEMORY_MIB}")]
    Memory(String),
    #[error("annotation {key}={annotated:?} and env {variable}={value:?} name different files: drop one of them")]
    Conflict { key: &'static str, annotated: String, variable: &'static str, value: String },
}

/// What a container asked for through annotations (and RunX's env variables).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Requests {
    pub kernel: Option<String>,
    pub ramdisk: Option<String>,
    pub rootfs: Option<RootfsMode>,
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
    pub profiles: Vec<String>,
    /// Whether the guest gets a vif (`io.runx.network`); None: its kind decides.
    pub vif: Option<bool>,
}

impl Requests {
    pub fn parse(
        annotations: &HashMap<String, String>,
        env: &[String],
        allowed: &[String],
    ) -> Result<Self, AnnotationError> {
        let mut wanted: Vec<(String, String)> =
            annotations.iter().filter(|(k, _)| k.starts_with(PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect();
        for entry in env {
            for (variable, key) in [(ENV_KERNEL, KERNEL), (ENV_RAMDISK, RAMDISK)] {
                let Some(value) = entry.strip_prefix(variable).and_then(|rest| rest.strip_prefix('=')) else {
                    continue;
                };
                // Both may name the file, but not two files: which one wins would be a guess.
                match annotations.get(key) {
                    Some(annotated) if annotated != value => {
                        return Err(AnnotationError::Conflict {
                            key,
                            annotated: annotated.clone(),
                            variable,
                            value: value.to_owned(),
                        })
                    }
                    Some(_) => {}
                    None => wanted.push((key.to_owned(), value.to_owned())),
                }
            }
        }
        wanted.sort();
        let mut requests = Self::default();
        for (key, value) in wanted {
            if !KNOWN.contains(&key.as_str()) {
                return Err(AnnotationError::Unknown(key));
            }
            if !allowed.iter().any(|a| *a == key) {
                return Err(AnnotationError::NotAllowed(key));
            }
            let invalid = |why| AnnotationError::Invalid { key: key.clone(), value: value.clone(), why };
            match key.as_str() {
                KERNEL => requests.kernel = Some(value),
                RAMDISK => requests.ramdisk = Some(value),
                ROOTFS => {
                    requests.rootfs =
                        Some(RootfsMode::from_name(&value).ok_or_else(|| invalid("use initramfs or disk"))?)
                }
                MEMORY => {
                    requests.memory_mib = Some(
                        value.parse().ok().filter(|&m| m >= MIN_MEMORY_MIB).ok_or(AnnotationError::Memory(value))?,
                    )
                }
                VCPUS => {
                    requests.vcpus =
                        Some(value.parse().ok().filter(|&v| v >= 1).ok_or_else(|| invalid("use a count, at least 1"))?)
                }
                PROFILE => requests.profiles = value.split(',').map(|p| p.trim().to_owned()).collect(),
                NETWORK => {
                    requests.vif = Some(match value.as_str() {
                        "vif" => true,
                        "none" => false,
                        _ => return Err(invalid("use vif or none")),
                    })
                }
                _ => unreachable!("KNOWN lists every key matched here"),
            }
        }
        if requests.ramdisk.is_some() && requests.kernel.is_none() {
            return Err(AnnotationError::Invalid {
                key: RAMDISK.to_owned(),
                value: requests.ramdisk.unwrap_or_default(),
                why: "a container ramdisk needs a container kernel (io.runx.kernel or RUNX_KERNEL)",
            });
        }
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        KNOWN.iter().map(|s| (*s).to_owned()).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn reads_annotations_and_runx_env() {
        let r = Requests::parse(
            &map(&[(MEMORY, "48"), (ROOTFS, "disk"), ("org.other", "x")]),
            &["RUNX_KERNEL=/boot/Image".into(), "PATH=/bin".into()],
            &all(),
        )
        .unwrap();
        assert_eq!(r.memory_mib, Some(48));
        assert_eq!(r.rootfs, Some(RootfsMode::Disk));
        assert_eq!(r.kernel.as_deref(), Some("/boot/Image"));
        assert_eq!((r.vcpus, r.vif), (None, None));
        let r = Requests::parse(&map(&[(NETWORK, "vif")]), &[], &all()).unwrap();
        assert_eq!(r.vif, Some(true));
        let err = Requests::parse(&map(&[(NETWORK, "bridge")]), &[], &all()).unwrap_err().to_string();
        assert!(err.contains("use vif or none"), "{err}");
    }

    #[test]
    fn refuses_unknown_disallowed_and_bad_values() {
        let err = Requests::parse(&map(&[("io.runx.xl", "iomem=[]")]), &[], &all()).unwrap_err();
        assert_eq!(err, AnnotationError::Unknown("io.runx.xl".into()));
        let err = Requests::parse(&map(&[(MEMORY, "64")]), &[], &[VCPUS.to_owned()]).unwrap_err();
        assert_eq!(err, AnnotationError::NotAllowed(MEMORY.into()));
        let err = Requests::parse(&[].into_iter().collect(), &["RUNX_KERNEL=/k".into()], &[]).unwrap_err();
        assert_eq!(err, AnnotationError::NotAllowed(KERNEL.into()));
        assert!(Requests::parse(&map(&[(MEMORY, "lots")]), &[], &all()).is_err());
        assert!(Requests::parse(&map(&[(VCPUS, "0")]), &[], &all()).is_err());
        assert!(Requests::parse(&map(&[(RAMDISK, "/r")]), &[], &all()).is_err());
    }

    #[test]
    fn an_annotation_and_env_naming_different_files_are_refused() {
        let env = |pairs: &[&str]| pairs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let err = Requests::parse(&map(&[(KERNEL, "/boot/a")]), &env(&["RUNX_KERNEL=/boot/b"]), &all()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "annotation io.runx.kernel=\"/boot/a\" and env RUNX_KERNEL=\"/boot/b\" name different files: drop one of them"
        );
        let annotations = map(&[(KERNEL, "/k"), (RAMDISK, "/r1")]);
        let err = Requests::parse(&annotations, &env(&["RUNX_RAMDISK=/r2"]), &all()).unwrap_err();
        assert!(matches!(err, AnnotationError::Conflict { key: RAMDISK, .. }), "{err}");
        // The same file named twice is one request.
        let r = Requests::parse(&annotations, &env(&["RUNX_KERNEL=/k", "RUNX_RAMDISK=/r1"]), &all()).unwrap();
        assert_eq!((r.kernel.as_deref(), r.ramdisk.as_deref()), (Some("/k"), Some("/r1")));
    }
}
