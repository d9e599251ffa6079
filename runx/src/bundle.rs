//! An OCI bundle: config.json and the rootfs it names.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::vm::VmConfig;

/// The largest config.json runx reads: real ones are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {path}: {source}: is --bundle the folder that holds config.json?")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a regular file (a device, folder or pipe is refused): write config.json as a file")]
    NotFile { path: PathBuf },
    #[error("{path} is larger than {MAX_CONFIG_BYTES} bytes, the most runx reads of a config.json: trim it")]
    TooLarge { path: PathBuf },
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
        let text = read_config(&path)?;
        let parse_error = |message: String| BundleError::Parse { path: path.clone(), message };
        let mut json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| parse_error(e.to_string()))?;
        // oci-spec's model of `vm` predates hwConfig and requires vm.kernel: runx reads `vm` itself.
        let vm = match json.as_object_mut().and_then(|o| o.remove("vm")) {
            Some(vm) => Some(serde_json::from_value::<VmConfig>(vm).map_err(|e| parse_error(format!("vm: {e}")))?),
            None => None,
        };
        let spec: Spec = serde_json::from_value(json).map_err(|e| parse_error(e.to_string()))?;
        let invalid = |what: String| BundleError::Invalid { path: path.clone(), what };
        if !supported_version(spec.version()) {
            return Err(invalid(format!(
                "ociVersion {:?} is not a runtime-spec version runx implements: use a 1.x version such as {}",
                spec.version(),
                crate::spec_version!()
            )));
        }
        let root =
            spec.root().as_ref().ok_or_else(|| invalid("root.path is missing: name the rootfs folder".into()))?;
        let rootfs = dir.join(root.path());
        // As runc: a symlink (say to /) would have the host's files packed as the container's.
        if std::fs::symlink_metadata(&rootfs).is_ok_and(|md| md.file_type().is_symlink()) {
            return Err(invalid(format!(
                "root.path {} is a symlink: point root.path at a real folder",
                rootfs.display()
            )));
        }
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

/// Whether `version` is a semantic version of runtime-spec 1.x: runx implements 1.0.0 up to
/// `spec_version!`, and reads 1.3's `vm` object; a later 1.x only adds what runx then ignores.
fn supported_version(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) && parts[0] == "1"
}

/// config.json, if it is a regular file of at most `MAX_CONFIG_BYTES`. Checked on a descriptor
/// that cannot read (O_PATH), so a symlink to a device or a pipe is never opened for reading.
fn read_config(path: &Path) -> Result<Vec<u8>, BundleError> {
    let read_err = |source| BundleError::Read { path: path.to_owned(), source };
    let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| read_err(e.into()))?;
    // SAFETY: `fd` was just returned by a successful open and is owned by nothing else.
    let fd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let md = fd.metadata().map_err(read_err)?;
    if !md.is_file() {
        return Err(BundleError::NotFile { path: path.to_owned() });
    }
    if md.len() > MAX_CONFIG_BYTES {
        return Err(BundleError::TooLarge { path: path.to_owned() });
    }
    let mut text = Vec::new();
    // The file may grow after the check: read no more than the limit allows.
    runx_image::tree::reopen(&fd)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut text))
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(BundleError::TooLarge { path: path.to_owned() });
    }
    Ok(text)
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
    fn oci_version_must_be_a_1_x_semantic_version() {
        for good in ["1.0.0", "1.0.2-dev", "1.2.0", "1.3.0"] {
            assert!(supported_version(good), "{good}");
        }
        for bad in ["invalid", "", "1.0", "2.0.0", "1.a.0", "0.9.0"] {
            assert!(!supported_version(bad), "{bad}");
        }
        let dir = bundle("version", &GOOD.replace("1.0.2", "invalid"), true);
        let err = Bundle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("ociVersion \"invalid\"") && err.contains("use a 1.x version"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

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

    #[test]
    fn a_rootfs_that_is_a_symlink_is_refused() {
        let dir = bundle("rootlink", &GOOD.replace("\"rootfs\"", "\"host\""), false);
        std::os::unix::fs::symlink("/", dir.join("host")).unwrap();
        let err = Bundle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("root.path") && err.contains("is a symlink: point root.path at a real folder"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn config_json_must_be_a_file_of_bounded_size() {
        let dir = bundle("zero", GOOD, true);
        std::fs::remove_file(dir.join("config.json")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("config.json")).unwrap();
        let err = Bundle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("config.json is not a regular file"), "{err}");
        std::fs::remove_file(dir.join("config.json")).unwrap();
        nix::unistd::mkfifo(&dir.join("config.json"), Mode::from_bits_truncate(0o600)).unwrap();
        let err = Bundle::load(&dir).unwrap_err().to_string();
        assert!(err.contains("config.json is not a regular file"), "{err}");
        std::fs::remove_file(dir.join("config.json")).unwrap();
        let padded = format!("{}{}", GOOD, " ".repeat(MAX_CONFIG_BYTES as usize));
        std::fs::write(dir.join("config.json"), padded).unwrap();
        let err = Bundle::load(&dir).unwrap_err().to_string();
        assert!(err.contains(&format!("config.json is larger than {MAX_CONFIG_BYTES} bytes")), "{err}");
        // A symlink to a regular file is read.
        std::fs::write(dir.join("real.json"), GOOD).unwrap();
        std::fs::remove_file(dir.join("config.json")).unwrap();
        std::os::unix::fs::symlink("real.json", dir.join("config.json")).unwrap();
        Bundle::load(&dir).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
