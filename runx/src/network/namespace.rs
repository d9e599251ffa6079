//! Which network namespace a container's monitor lives in, from config.json's
//! `linux.namespaces`. `ctr run --cni` configures `/proc/PID/ns/net` of the pid `create` wrote,
//! the monitor's: a monitor left in dom0's namespace would have CNI wire dom0's own network.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

/// `NS_GET_NSTYPE` (linux/nsfs.h): the type of the namespace a file descriptor refers to.
const NS_GET_NSTYPE: nix::libc::c_ulong = 0xb703;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkNamespace {
    /// config.json has no network namespace (runc would share the host's network): the monitor
    /// stays in runx's namespace, and the guest's network is its own loopback.
    #[default]
    Host,
    /// A network namespace without a path: a new, empty one, as runc makes.
    New,
    /// The namespace the engine made, e.g. `/var/run/netns/cni-...`.
    Path(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("cannot open the network namespace {path} that config.json names: {source}: name one the engine made (a /var/run/netns file or /proc/PID/ns/net)")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path}, named in config.json as the network namespace, is not a network namespace: name a /var/run/netns file or /proc/PID/ns/net")]
    NotNetwork { path: PathBuf },
    #[error("{path}, named in config.json as the network namespace, is runx's own (the host's): a guest is not given the host's network; leave the network namespace out of config.json for a guest with loopback only")]
    Host { path: PathBuf },
}

impl NetworkNamespace {
    /// What config.json's `linux.namespaces` asks for.
    pub fn of(spec: &Spec) -> Self {
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
        match namespaces.iter().find(|ns| ns.typ() == LinuxNamespaceType::Network) {
            None => NetworkNamespace::Host,
            Some(ns) => match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => NetworkNamespace::Path(path.clone()),
                _ => NetworkNamespace::New,
            },
        }
    }

    /// The namespace to join, opened and checked: a network namespace, and not runx's own.
    /// None when there is nothing to join.
    pub fn open(&self) -> Result<Option<OwnedFd>, NamespaceError> {
        match self {
            NetworkNamespace::Path(path) => open_checked(path).map(Some),
            NetworkNamespace::Host | NetworkNamespace::New => Ok(None),
        }
    }
}

fn open_checked(path: &Path) -> Result<OwnedFd, NamespaceError> {
    let file = File::open(path).map_err(|source| NamespaceError::Open { path: path.to_owned(), source })?;
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type, or fails on other files.
    let kind = unsafe { nix::libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    if kind != nix::libc::CLONE_NEWNET {
        return Err(NamespaceError::NotNetwork { path: path.to_owned() });
    }
    let own = std::fs::metadata("/proc/self/ns/net");
    let given = file.metadata();
    if let (Ok(own), Ok(given)) = (own, given) {
        if (own.dev(), own.ino()) == (given.dev(), given.ino()) {
            return Err(NamespaceError::Host { path: path.to_owned() });
        }
    }
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(namespaces: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}},
            "linux":{{"namespaces":{namespaces}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn reads_what_config_json_asks_for() {
        assert_eq!(NetworkNamespace::of(&spec(r#"[{"type":"pid"},{"type":"mount"}]"#)), NetworkNamespace::Host);
        assert_eq!(NetworkNamespace::of(&spec(r#"[{"type":"pid"},{"type":"network"}]"#)), NetworkNamespace::New);
        assert_eq!(
            NetworkNamespace::of(&spec(r#"[{"type":"network","path":"/var/run/netns/cni-1"}]"#)),
            NetworkNamespace::Path("/var/run/netns/cni-1".into())
        );
    }

    #[test]
    fn refuses_what_is_not_a_network_namespace_of_its_own() {
        let open = |path: &str| NetworkNamespace::Path(path.into()).open().unwrap_err().to_string();
        let missing = open("/nonexistent/runx-netns");
        assert!(missing.contains("cannot open the network namespace /nonexistent/runx-netns"), "{missing}");
        for not_network in ["/proc/self/ns/mnt", "/proc/self/status"] {
            let err = open(not_network);
            assert!(
                err.contains(&format!(
                    "{not_network}, named in config.json as the network namespace, is not a network namespace"
                )),
                "{err}"
            );
        }
        let host = open("/proc/self/ns/net");
        assert!(host.contains("is runx's own (the host's)"), "{host}");
        assert!(NetworkNamespace::New.open().unwrap().is_none());
    }
}
