//! dom0 for the lab: Xen, Debian's kernel, and a small initramfs holding
//! busybox, the Xen toolstack with its libraries, and only the kernel
//! modules dom0 needs. Booting it takes seconds, not the ~40 s of Debian's
//! own initramfs under emulation.

use std::collections::BTreeSet;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use runx_image::cpio::CpioWriter;

use super::cache::{Cache, Key};
use super::debs;
use crate::arch::Arch;
use crate::cmd;

const INIT: &str = include_str!("assets/dom0-init.sh");
pub const XL_CONF: &str =
    "# lab dom0: no ballooning, dom0 memory is fixed on Xen's command line\nautoballoon=\"off\"\n";

/// Kernel modules dom0 loads at boot, in this order (deps come from modules.dep).
const MODULES: &[&str] = &[
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "xen-privcmd",
    "xenfs",
    "xen-blkback",
    "xen-netback",
    // The engine's network (CNI's bridge plugin) and runx's redirects between a vif and it.
    "bridge",
    "veth",
    "sch_ingress",
    "cls_u32",
    "act_mirred",
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
    "overlay",
    "loop",
    // CNI's portmap plugin: iptables (Debian's nft backend) DNAT, marks and masquerade. After
    // crc32c_generic: nf_conntrack's libcrc32c asks the crypto API for crc32c when it loads.
    "nf_tables",
    "nft_compat",
    "nft_chain_nat",
    "xt_nat",
    "xt_addrtype",
    "xt_comment",
    "xt_multiport",
    "xt_mark",
    "xt_MASQUERADE",
    "xt_conntrack",
    "xt_tcpudp",
];

/// Binaries dom0 runs; their shared libraries must all be in the image.
const TOOLS: &[&str] = &[
    "usr/lib/xen-4.17/bin/xl",
    "usr/lib/xen-4.17/bin/xenstored",
    "usr/lib/xen-4.17/bin/xenconsoled",
    "usr/lib/xen-4.17/bin/xen-init-dom0",
    "usr/bin/xenstore",
];

/// Packages unpacked into dom0 besides the kernel and the hypervisor (and, on arm64, into dom0's
/// disk: see rootfs.rs).
pub const PACKAGES: &[&str] = &[
    "busybox-static",
    "xen-utils-4.17",
    "xenstore-utils",
    "libxenmisc4.17",
    "libxencall1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenstore4",
    "libxentoollog1",
    "libxendevicemodel1",
    "libxentoolcore1",
    "libxenhypfs1",
    "libyajl2",
    "libc6",
    "libgcc-s1",
    "zlib1g",
    "liblzma5",
    "libzstd1",
    "libuuid1",
    "libfdt1",
];

/// The files QEMU (x86_64) or u-boot (arm64) boots.
#[derive(Debug, Clone)]
pub struct Dom0 {
    pub arch: Arch,
    /// The hypervisor: a multiboot ELF on x86_64, an `Image` on arm64.
    pub xen: PathBuf,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The unpacked packages, for guests that reuse busybox or the kernel.
    pub packages: PathBuf,
}

pub fn build(cache: &Cache, arch: Arch) -> Result<Dom0> {
    let kernel_pkg = debs::kernel_package(arch)?;
    let kernel_version = kernel_pkg.trim_start_matches("linux-image-").to_owned();
    let mut packages: Vec<String> = PACKAGES.iter().map(|p| p.to_string()).collect();
    packages.push(format!("xen-hypervisor-4.17-{}", arch.deb()));
    packages.push(kernel_pkg);
    let files = debs::fetch(cache, arch, &packages)?;
    let unpacked = debs::unpack(cache, &format!("debs-{}", arch.name()), &files)?;

    let mut key = Key::new("dom0-v1");
    key.add(unpacked.as_os_str().as_encoded_bytes()).add(INIT).add(XL_CONF).add(MODULES.join(" "));
    let dir = cache.get_or_build(&format!("dom0-{}", arch.name()), &key, |out| {
        let root = out.join("root");
        stage_root(&unpacked, &root, arch, &kernel_version)?;
        write_initramfs(&root, &out.join("dom0.cpio.gz"))?;
        fs::remove_dir_all(&root)?;
        copy_boot_files(&unpacked, out, arch, &kernel_version)
    })?;
    Ok(Dom0 {
        arch,
        xen: dir.join("xen"),
        kernel: dir.join("vmlinuz"),
        initramfs: dir.join("dom0.cpio.gz"),
        packages: unpacked,
    })
}

fn copy_boot_files(unpacked: &Path, out: &Path, arch: Arch, kernel_version: &str) -> Result<()> {
    let boot = unpacked.join("boot");
    fs::copy(boot.join(format!("vmlinuz-{kernel_version}")), out.join("vmlinuz"))?;
    match arch {
        // QEMU's -kernel loads the multiboot ELF, not the gzip Debian ships.
        Arch::X86_64 => {
            let gz = fs::File::open(boot.join("xen-4.17-amd64.gz"))?;
            let mut elf = fs::File::create(out.join("xen"))?;
            std::io::copy(&mut flate2::read::GzDecoder::new(gz), &mut elf)?;
        }
        Arch::Arm64 => {
            fs::copy(boot.join("xen-4.17-arm64"), out.join("xen"))?;
        }
    }
    Ok(())
}

/// Copies the userland, the module subset and the init into `root`.
fn stage_root(unpacked: &Path, root: &Path, arch: Arch, kernel_version: &str) -> Result<()> {
    fs::create_dir_all(root.join("usr"))?;
    fs::create_dir_all(root.join("lib"))?;
    let mut userland: Vec<PathBuf> =
        ["bin", "lib64", "usr/bin", "usr/sbin", "usr/lib"].iter().map(PathBuf::from).collect();
    // lib/ minus lib/modules: the module subset is copied on its own.
    for entry in fs::read_dir(unpacked.join("lib"))? {
        let name = entry?.file_name();
        if name != "modules" {
            userland.push(Path::new("lib").join(name));
        }
    }
    for dir in userland {
        let src = unpacked.join(&dir);
        if src.exists() {
            cmd::run(Command::new("cp").arg("-a").arg(&src).arg(root.join(&dir)))?;
        }
    }
    for dir in ["proc", "sys", "dev", "run", "tmp", "etc/xen", "host", "rootfs", "var/lib/xen", "var/log/xen"] {
        fs::create_dir_all(root.join(dir))?;
    }
    std::os::unix::fs::symlink("../run", root.join("var/run"))?;
    fs::write(root.join("init"), INIT)?;
    set_mode(&root.join("init"), 0o755)?;
    fs::write(root.join("etc/xen/xl.conf"), XL_CONF)?;
    fs::write(root.join("etc/lab-modules"), MODULES.join("\n") + "\n")?;
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(root.join("etc/group"), "root:x:0:\n")?;
    copy_modules(unpacked, root, kernel_version)?;
    check_libraries(root, arch, TOOLS)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))
}

/// Copies MODULES and everything they depend on, then indexes them.
fn copy_modules(unpacked: &Path, root: &Path, version: &str) -> Result<()> {
    // Index every module on a hard-linked copy: depmod writes beside the modules.
    let rel = format!("lib/modules/{version}");
    let index = root.join("depmod-full");
    fs::create_dir_all(index.join("lib/modules"))?;
    cmd::run(Command::new("cp").arg("-al").arg(unpacked.join(&rel)).arg(index.join("lib/modules")))?;
    cmd::run(Command::new("depmod").arg("-b").arg(&index).arg(version))?;
    let dep_text = fs::read_to_string(index.join(&rel).join("modules.dep"))?;
    let builtin = fs::read_to_string(unpacked.join(&rel).join("modules.builtin")).unwrap_or_default();
    let wanted = module_closure(&dep_text, &builtin, MODULES)?;
    let src_dir = unpacked.join(&rel);
    let dest_dir = root.join(&rel);
    for module in &wanted {
        let dest = dest_dir.join(module);
        fs::create_dir_all(dest.parent().expect("module paths have a folder"))?;
        fs::copy(src_dir.join(module), &dest).with_context(|| format!("copy module {module}"))?;
    }
    for meta in ["modules.order", "modules.builtin", "modules.builtin.modinfo"] {
        if src_dir.join(meta).exists() {
            fs::copy(src_dir.join(meta), dest_dir.join(meta))?;
        }
    }
    fs::remove_dir_all(&index)?;
    cmd::run(Command::new("depmod").arg("-b").arg(root).arg(version))
}

/// The module files (relative to lib/modules/VERSION) that `wanted` needs;
/// modules built into the kernel need none.
fn module_closure(modules_dep: &str, modules_builtin: &str, wanted: &[&str]) -> Result<BTreeSet<String>> {
    let file_of = |name: &str| format!("/{name}.ko");
    let mut files = BTreeSet::new();
    for name in wanted {
        let needle = file_of(name);
        if modules_builtin.lines().any(|l| l.ends_with(&needle)) {
            continue;
        }
        let line = modules_dep
            .lines()
            .find(|l| l.split(':').next().is_some_and(|m| m.ends_with(&needle)))
            .with_context(|| format!("dom0 needs kernel module {name}, but the kernel package has none"))?;
        let (module, deps) = line.split_once(':').expect("found by its colon");
        files.insert(module.to_owned());
        files.extend(deps.split_whitespace().map(str::to_owned));
    }
    Ok(files)
}

/// Fails when one of `tools` (paths under `root`) needs a shared library that is not in `root`.
pub fn check_libraries(root: &Path, arch: Arch, tools: &[&str]) -> Result<()> {
    let search = [format!("lib/{}", arch.triplet()), format!("usr/lib/{}", arch.triplet())];
    let mut todo: Vec<PathBuf> = tools.iter().map(|t| root.join(t)).collect();
    let mut seen = BTreeSet::new();
    while let Some(binary) = todo.pop() {
        let dynamic = cmd::stdout(Command::new("readelf").arg("-d").arg(&binary))?;
        for lib in dynamic.lines().filter_map(|l| l.split("Shared library: [").nth(1)).map(|l| l.trim_end_matches(']'))
        {
            if !seen.insert(lib.to_owned()) {
                continue;
            }
            let found = search.iter().map(|dir| root.join(dir).join(lib)).find(|p| p.exists());
            match found {
                Some(path) => todo.push(fs::canonicalize(&path).unwrap_or(path)),
                None => bail!("{} needs {lib}, which no package provides: add its Debian package (PACKAGES in dom0.rs; CONTAINERD in rootfs.rs for the arm64 disk)", binary.display()),
            }
        }
    }
    Ok(())
}

/// Packs `root` as a gzip-compressed newc archive.
pub fn write_initramfs(root: &Path, dest: &Path) -> Result<()> {
    let file = BufWriter::new(fs::File::create(dest).with_context(|| format!("cannot create {}", dest.display()))?);
    let mut cpio = CpioWriter::new(GzEncoder::new(file, flate2::Compression::fast()));
    cpio.append_tree(root, "", 0)?;
    cpio.finish()?.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_closure_follows_deps_and_skips_builtins() {
        let dep = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/jbd2/jbd2.ko\nkernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko\n";
        let builtin = "kernel/drivers/virtio/virtio_pci.ko\n";
        let files = module_closure(dep, builtin, &["ext4", "virtio_pci"]).unwrap();
        let files: Vec<_> = files.into_iter().collect();
        assert_eq!(files, ["kernel/fs/ext4/ext4.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/lib/crc16.ko"]);
        let err = module_closure(dep, builtin, &["nosuch"]).unwrap_err().to_string();
        assert!(err.contains("kernel module nosuch"), "{err}");
    }
}
