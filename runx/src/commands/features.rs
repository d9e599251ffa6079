use anyhow::Result;
use serde_json::json;

/// runtime-spec's features document: no namespaces, cgroups or LSMs, since each container is a
/// whole guest; the annotations runx reads are listed under `annotations`.
pub fn run() -> Result<()> {
    let doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": runx::spec_version!(),
        "hooks": [],
        "mountOptions": ["ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind"],
        "linux": {
            "namespaces": [],
            "capabilities": [],
            "cgroup": { "v1": false, "v2": false, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
        },
        "annotations": {
            "io.runx.version": env!("CARGO_PKG_VERSION"),
            "io.runx.annotations": runx::annotations::KNOWN.join(","),
            "io.runx.mountTypes": runx_launch::MOUNT_TYPES.join(","),
        },
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
