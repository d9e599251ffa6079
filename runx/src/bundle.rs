//! An OCI bundle: config.json and the rootfs it names.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::vm::VmConfig;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {path}: {source}: is --bundle the folder that holds config.json?")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid OCI runtime config: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// The rootfs, absolute.
    pub rootfs: PathBuf,
    /// The `vm` object (runtime-spec 1.3), which oci-spec does not model.
    pub vm: Option<VmConfig>,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let dir =
            std::fs::canonicalize(dir).map_err(|source| BundleError::Read { path: dir.join("config.json"), source })?;
        let path = dir.join("config.json");
        let text = std::fs::read(&path).map_err(|source| BundleError::Read { path: path.clone(), source })?;
        let parse_error = |message: String| BundleError::Parse { path: path.clone(), message };
        let mut json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| parse_error(e.to_string()))?;
        // oci-spec's model of `vm` predates hwConfig and requires vm.kernel: runx reads `vm` itself.
        let vm = match json.as_object_mut().and_then(|o| o.remove("vm")) {
            Some(vm) => Some(serde_json::from_value::<VmConfig>(vm).map_err(|e| parse_error(format!("vm: {e}")))?),
            None => None,
        };
        let spec: Spec = serde_json::from_value(json).map_err(|e| parse_error(e.to_string()))?;
        let invalid = |what: String| BundleError::Invalid { path: path.clone(), what };
        let root =
            spec.root().as_ref().ok_or_else(|| invalid("root.path is missing: name the rootfs folder".into()))?;
        let rootfs = dir.join(root.path());
        if !rootfs.is_dir() {
            return Err(invalid(format!("root.path {} is not a folder", rootfs.display())));
        }
        let process = spec.process().as_ref().ok_or_else(|| invalid("process is missing".into()))?;
        if process.args().as_ref().map_or(true, |args| args.is_empty()) {
            return Err(invalid("process.args is empty: name the program to run".into()));
        }
        Ok(Self { dir, spec, rootfs, vm })
    }

    pub fn process(&self) -> &oci_spec::runtime::Process {
        self.spec.process().as_ref().expect("checked by load")
    }

    pub fn annotations(&self) -> std::collections::HashMap<String, String> {
        self.spec.annotations().clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(tag: &str, config: &str, with_rootfs: bool) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runx-bundle-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if with_rootfs {
            std::fs::create_dir(dir.join("rootfs")).unwrap();
        }
        std::fs::write(dir.join("config.json"), config).unwrap();
        dir
    }

    const GOOD: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}}"#;

    #[test]
    fn loads_a_minimal_bundle() {
        let dir = bundle("good", GOOD, true);
        let b = Bundle::load(&dir).unwrap();
        assert_eq!(b.rootfs, std::fs::canonicalize(&dir).unwrap().join("rootfs"));
        assert_eq!(b.process().args().as_ref().unwrap(), &["sh".to_owned()]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_what_is_wrong() {
        let dir = bundle("corrupt", "{\"ociVersion\": ", true);
        let err = Bundle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("config.json is not a valid OCI runtime config"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
        let dir = bundle("norootfs", GOOD, false);
        let err = Bundle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("is not a folder"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
        let err = Bundle::load(Path::new("/nonexistent/bundle")).unwrap_err().to_string();
        assert!(err.contains("--bundle"), "{err}");
    }
}
