use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use runx::annotations;
use runx::host_config::HostConfig;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write config.json.
    #[arg(long, short, default_value = ".")]
    bundle: PathBuf,
}

/// A config.json to edit: runc's default shape, with the runx annotations set to this host's
/// defaults so that a user sees the knobs.
pub fn run(args: Args) -> Result<()> {
    let host = HostConfig::load()?;
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let rootfs = match host.rootfs {
        runx_launch::RootfsMode::Initramfs => "initramfs",
        runx_launch::RootfsMode::Disk => "disk",
    };
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runx",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"] }
        ],
        "annotations": {
            annotations::ROOTFS: rootfs,
            annotations::MEMORY: host.memory_mib.to_string(),
            annotations::VCPUS: host.vcpus.to_string(),
        },
        "linux": {
            "resources": {},
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
            ]
        }
    });
    std::fs::write(&path, serde_json::to_string_pretty(&spec)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
