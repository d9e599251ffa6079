//! The host's runtime settings, `/etc/runx/config.toml`: what the admin decides, never the
//! image. A missing file means the documented defaults.

use std::path::{Path, PathBuf};

use runx_launch::RootfsMode;
use serde::Deserialize;

/// Where the host config lives; `RUNX_CONFIG` names another file.
pub const DEFAULT_PATH: &str = "/etc/runx/config.toml";

#[derive(Debug, thiserror::Error)]
pub enum HostConfigError {
    #[error("cannot read the runx host config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the runx host config {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The host config. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// The guest kernel runx boots when the container brings none.
    pub kernel: PathBuf,
    /// The base initramfs (runx-init as /init), uncompressed cpio.
    pub initramfs: PathBuf,
    /// Guest kernel command line.
    pub cmdline: String,
    /// Guest memory in MiB when `linux.resources.memory.limit` sets none; in `initramfs` mode the
    /// size of the packed rootfs is added.
    pub memory_mib: u64,
    /// Guest vcpus when `linux.resources.cpu` sets none.
    pub vcpus: u32,
    /// How the container's root reaches the guest when no annotation chooses.
    #[serde(deserialize_with = "rootfs_mode")]
    pub rootfs: RootfsMode,
    /// The state root when `--root` is not given.
    pub root: PathBuf,
    /// The annotations (from config.json) a container may set; the rest are refused.
    pub allowed_annotations: Vec<String>,
    /// Disk use bound of the packed-rootfs cache, MiB (0 turns the cache off).
    pub archive_cache_mib: u64,
    /// The folder of named profiles (`NAME.cfg`, xl settings) for `io.runx.profile`.
    pub profiles_dir: PathBuf,
    /// The profiles a container may select; the rest are refused.
    pub allowed_profiles: Vec<String>,
    /// Whether config.json's `vm` object (kernel, hwConfig: written by containerd's client,
    /// never by an image) is honoured; false refuses bundles that carry one.
    pub allow_vm_config: bool,
    /// Whether `vm.hwConfig` may hand host devices to a guest (`deviceTree`, `dtdevs`, `iomems`,
    /// `irqs`): off unless the admin turns it on, like profiles, since a device given to a guest
    /// is the host's no more.
    pub allow_vm_devices: bool,
    /// Whether `create` lets a runx-init guest boot (it then waits in the guest for `start`)
    /// rather than keeping the domain paused until `start`: the boot overlaps what containerd
    /// does between the two calls. Containers with their own kernel are always created paused.
    pub boot_on_create: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            kernel: PathBuf::from("/usr/lib/runx/kernel"),
            initramfs: PathBuf::from("/usr/lib/runx/initramfs.cpio"),
            cmdline: "console=hvc0 quiet loglevel=1".to_owned(),
            memory_mib: 64,
            vcpus: 1,
            rootfs: RootfsMode::Initramfs,
            root: PathBuf::from("/run/runx"),
            allowed_annotations: crate::annotations::ALLOWED_BY_DEFAULT.iter().map(|s| (*s).to_owned()).collect(),
            archive_cache_mib: 1024,
            profiles_dir: PathBuf::from("/etc/runx/profiles"),
            allowed_profiles: Vec::new(),
            allow_vm_config: true,
            allow_vm_devices: false,
            boot_on_create: true,
        }
    }
}

impl HostConfig {
    /// Reads `RUNX_CONFIG` if set (the file must exist), else `/etc/runx/config.toml` if it exists.
    pub fn load() -> Result<Self, HostConfigError> {
        match std::env::var_os("RUNX_CONFIG") {
            Some(path) => Self::from_file(Path::new(&path)),
            None if Path::new(DEFAULT_PATH).exists() => Self::from_file(Path::new(DEFAULT_PATH)),
            None => Ok(Self::default()),
        }
    }

    /// For verbs on containers that exist (state, kill, delete...), which must work whatever the
    /// config says: a config that cannot be read gives the defaults, with its `root` if that
    /// much can be read, and the error to warn about.
    pub fn load_for_existing() -> (Self, Option<HostConfigError>) {
        match Self::load() {
            Ok(config) => (config, None),
            Err(e) => {
                let root = match &e {
                    HostConfigError::Parse { path, .. } => std::fs::read_to_string(path).ok().and_then(|t| root_of(&t)),
                    HostConfigError::Read { .. } => None,
                };
                let mut config = Self::default();
                if let Some(root) = root {
                    config.root = root;
                }
                (config, Some(e))
            }
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, HostConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| HostConfigError::Read { path: path.into(), source })?;
        Self::parse(&text).map_err(|message| HostConfigError::Parse { path: path.into(), message })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if config.memory_mib == 0 || config.vcpus == 0 {
            return Err("memory_mib and vcpus must be at least 1".into());
        }
        if let Some(name) = config.allowed_annotations.iter().find(|a| !crate::annotations::KNOWN.contains(&a.as_str()))
        {
            return Err(format!(
                "allowed_annotations names {name:?}, which runx does not know: use some of {}",
                crate::annotations::KNOWN.join(", ")
            ));
        }
        Ok(config)
    }
}

/// `rootfs = "initramfs"` or `"disk"`, the names of the launch spec.
fn rootfs_mode<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<RootfsMode, D::Error> {
    let name = String::deserialize(deserializer)?;
    RootfsMode::from_name(&name).ok_or_else(|| {
        serde::de::Error::invalid_value(serde::de::Unexpected::Str(&name), &"a rootfs mode: initramfs or disk")
    })
}

/// The `root` of a config that is otherwise invalid, if its TOML and that key can be read.
fn root_of(text: &str) -> Option<PathBuf> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table.get("root")?.as_str().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(HostConfig::parse("").unwrap(), HostConfig::default());
        assert!(HostConfig::default().memory_mib <= 64);
    }

    #[test]
    fn fields_override_defaults() {
        let config = HostConfig::parse("memory_mib = 32\nrootfs = \"disk\"\nkernel = \"/boot/guest\"\n").unwrap();
        assert_eq!(config.memory_mib, 32);
        assert_eq!(config.rootfs, RootfsMode::Disk);
        assert_eq!(config.kernel, PathBuf::from("/boot/guest"));
        assert_eq!(config.vcpus, 1);
    }

    /// meta-runx installs a config that shows every default, commented out: it must not drift.
    #[test]
    fn the_shipped_config_shows_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../meta-runx/recipes-containers/runx/files/config.toml");
        let shipped = std::fs::read_to_string(path).unwrap();
        let settings: Vec<&str> = shipped
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split_once(" = ").map_or(false, |(k, _)| !k.contains(' ')))
            .collect();
        let uncommented = settings.join("\n");
        assert_eq!(HostConfig::parse(&uncommented).unwrap(), HostConfig::default());
        for key in [
            "kernel",
            "initramfs",
            "cmdline",
            "memory_mib",
            "vcpus",
            "rootfs",
            "root",
            "allowed_annotations",
            "archive_cache_mib",
            "profiles_dir",
            "allowed_profiles",
            "allow_vm_config",
            "allow_vm_devices",
            "boot_on_create",
        ] {
            assert!(uncommented.contains(&format!("{key} = ")), "{key} missing from {path}");
        }
    }

    #[test]
    fn an_invalid_config_still_names_its_root() {
        assert_eq!(root_of("root = \"/run/elsewhere\"\nmemory = 32\n"), Some(PathBuf::from("/run/elsewhere")));
        assert_eq!(root_of("root = ["), None);
        assert_eq!(root_of("vcpus = 0\n"), None);
    }

    #[test]
    fn unknown_keys_and_annotations_are_refused() {
        let err = HostConfig::parse("memory = 32\n").unwrap_err();
        assert!(err.contains("unknown field `memory`"), "{err}");
        let err = HostConfig::parse("allowed_annotations = [\"io.runx.xl\"]\n").unwrap_err();
        assert!(err.contains("io.runx.xl"), "{err}");
        assert!(HostConfig::parse("vcpus = 0\n").is_err());
    }
}
