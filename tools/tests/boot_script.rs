//! `runx-tools boot-script` end to end: golden boot.cmd files for each board
//! and feature, boot.scr checked by u-boot's own dumpimage and mkimage, and
//! bad input refused with a clear message and no output written.
//!
//! Set UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runx_tools::uimage::ScriptImage;

const EPOCH: &str = "1700000000";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runx-boot-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a file that starts with `head` and is `size` bytes long.
fn image(dir: &Path, name: &str, head: &[u8], size: u64) {
    fs::write(dir.join(name), head).unwrap();
    fs::OpenOptions::new().write(true).open(dir.join(name)).unwrap().set_len(size).unwrap();
}

fn arm64_image(extra: &[u8]) -> Vec<u8> {
    let mut head = vec![0u8; 64];
    head[0x38..0x3c].copy_from_slice(b"ARM\x64");
    head.extend_from_slice(extra);
    head
}

fn uimage(arch: u8, load: u32, size: u32) -> Vec<u8> {
    let mut head = vec![0u8; 64];
    head[0..4].copy_from_slice(&0x2705_1956u32.to_be_bytes());
    head[12..16].copy_from_slice(&size.to_be_bytes());
    head[16..20].copy_from_slice(&load.to_be_bytes());
    head[20..24].copy_from_slice(&load.to_be_bytes());
    head[29] = arch;
    head[30] = 2;
    head
}

/// Every image the test configs name, with realistic sizes.
fn make_images(dir: &Path) {
    const MIB: u64 = 1 << 20;
    let gzip = b"\x1f\x8b\x08\x00";
    let dtb = 0xd00d_feedu32.to_be_bytes();
    image(dir, "xen", &arm64_image(b"SMP Credit Scheduler rev2"), MIB);
    image(dir, "Image", &arm64_image(b""), 20 * MIB);
    image(dir, "dom0.cpio.gz", gzip, 8 * MIB);
    image(dir, "guest.cpio.gz", gzip, MIB);
    image(dir, "rootfs.cpio.gz", gzip, 16 * MIB);
    image(dir, "xen-image-minimal-zcu102-zynqmp.cpio.gz", gzip, 30 * MIB);
    image(dir, "system.dtb", &dtb, 40 << 10);
    image(dir, "ttc.dtb", &dtb, 2 << 10);
    image(dir, "ttc-demo.bin", &arm64_image(b""), 64 << 10);
    image(dir, "xen.ub", &uimage(22, 0x0800_0000, 0x10_0000), MIB + 64);
    image(dir, "xen-arm32.ub", &uimage(2, 0x0800_0000, 0x10_0000), MIB + 64);
    let mut bz = vec![0u8; 0x210];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    image(dir, "bzImage", &bz, 8 * MIB);
}

fn run_tool(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runx-tools"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/boot")
}

/// Generates the script for `case` in a scratch folder and checks it against the golden file.
fn check_case(case: &str) {
    let dir = scratch(case);
    make_images(&dir);
    fs::copy(golden_dir().join(format!("{case}.toml")), dir.join("boot.toml")).unwrap();
    let out = run_tool(&["boot-script", "boot.toml", "--out", "out"], &dir);
    assert!(out.status.success(), "{case}: {}", String::from_utf8_lossy(&out.stderr));

    let commands = fs::read_to_string(dir.join("out/boot.cmd")).unwrap();
    let golden = golden_dir().join(format!("{case}.cmd"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&golden, &commands).unwrap();
    }
    let expected = fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(commands, expected, "{case}: boot.cmd differs from {} (UPDATE_GOLDEN=1 rewrites it)", golden.display());

    // u-boot's reader accepts it (dumpimage's exit code: mkimage -l passes corrupt files).
    let listed = Command::new("dumpimage").args(["-T", "script", "-l", "out/boot.scr"]).current_dir(&dir).output();
    let listed = listed.expect("dumpimage must be installed (apt-get install u-boot-tools)");
    assert!(listed.status.success(), "{case}: dumpimage refused boot.scr: {listed:?}");

    // Byte for byte what mkimage makes of the same text, name and time.
    let scr = fs::read(dir.join("out/boot.scr")).unwrap();
    let parsed = ScriptImage::parse(&scr).unwrap();
    assert_eq!(parsed.text, commands.as_bytes());
    let mk = Command::new("mkimage")
        .args(["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", &parsed.name, "-d", "out/boot.cmd"])
        .arg("mk.scr")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(mk.status.success(), "{mk:?}");
    assert_eq!(scr, fs::read(dir.join("mk.scr")).unwrap(), "{case}: boot.scr differs from mkimage's");

    // A flipped bit anywhere in the text is caught by our reader.
    let mut corrupt = scr.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x20;
    assert!(ScriptImage::parse(&corrupt).is_err(), "{case}: corruption went unnoticed");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn qemu_arm64_over_tftp() {
    check_case("qemu-arm64-tftp");
}

#[test]
fn qemu_arm64_from_virtio_with_a_dom0less_guest() {
    check_case("qemu-arm64-virtio-dom0less");
}

#[test]
fn zcu102_over_tftp_with_realtime_arguments() {
    check_case("zcu102-tftp-realtime");
}

#[test]
fn zcu102_from_sd_with_the_ttc_passthrough_guest() {
    check_case("zcu102-mmc-ttc");
}

#[test]
fn zcu102_bootm_with_xen_uimage() {
    check_case("zcu102-bootm");
}

/// Runs boot-script on `config` and expects a failure mentioning every `needles`, with nothing written.
fn expect_refusal(name: &str, config: &str, needles: &[&str]) {
    let dir = scratch(name);
    make_images(&dir);
    fs::write(dir.join("boot.toml"), config).unwrap();
    let out = run_tool(&["boot-script", "boot.toml", "--out", "out"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name}: accepted bad input");
    for needle in needles {
        assert!(stderr.contains(needle), "{name}: {needle:?} missing from: {stderr}");
    }
    assert!(!dir.join("out").exists(), "{name}: wrote output despite the error");
    fs::remove_dir_all(dir).unwrap();
}

const QEMU_HEAD: &str = "board = \"qemu-arm64\"\n[load]\nmethod = \"tftp\"\n[xen]\nimage = \"xen\"\n";

#[test]
fn refuses_a_missing_file() {
    let config = format!("{QEMU_HEAD}[dom0]\nkernel = \"Image\"\nramdisk = \"nosuch.cpio.gz\"\n");
    expect_refusal("missing", &config, &["dom0 ramdisk", "nosuch.cpio.gz", "does not exist"]);
}

#[test]
fn refuses_an_x86_kernel_on_an_arm64_board() {
    let config = format!("{QEMU_HEAD}[dom0]\nkernel = \"bzImage\"\n");
    expect_refusal("x86", &config, &["dom0 kernel", "bzImage", "an x86 kernel", "arm64"]);
}

#[test]
fn refuses_images_that_do_not_fit_in_ram() {
    let dir = scratch("huge");
    make_images(&dir);
    image(&dir, "huge.cpio.gz", b"\x1f\x8b", 3 << 30);
    let config = format!("{QEMU_HEAD}[dom0]\nkernel = \"Image\"\nramdisk = \"huge.cpio.gz\"\n");
    fs::write(dir.join("boot.toml"), config).unwrap();
    let out = run_tool(&["boot-script", "boot.toml", "--out", "out"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("dom0 ramdisk") && stderr.contains("0x40400000..0xb8000000"), "{stderr}");
    assert!(!dir.join("out").exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_overlapping_images() {
    // bootm copies xen.ub's payload to its load address (0x8000000): Xen pinned there would be overwritten.
    let config = "board = \"zcu102\"\nboot = \"bootm\"\n[load]\nmethod = \"tftp\"\n[xen]\nimage = \"xen.ub\"\n\
                  address = 0x8000000\n[dom0]\nkernel = \"Image\"\n[devicetree]\nfile = \"system.dtb\"\n";
    expect_refusal("overlap", config, &["xen at 0x8000000", "overlap", "the copy of xen that bootm makes"]);
}

#[test]
fn refuses_an_arm32_xen_uimage_for_bootm() {
    let config = "board = \"zcu102\"\nboot = \"bootm\"\n[load]\nmethod = \"tftp\"\n[xen]\nimage = \"xen-arm32.ub\"\n\
                  [dom0]\nkernel = \"Image\"\n[devicetree]\nfile = \"system.dtb\"\n";
    expect_refusal("arm32", config, &["xen-arm32.ub", "ARM (32-bit)", "mkimage -A arm64 -T kernel"]);
}

#[test]
fn refuses_a_board_without_a_tree_when_no_dtb_is_given() {
    let config = "board = \"zcu102\"\n[load]\nmethod = \"tftp\"\n[xen]\nimage = \"xen\"\n[dom0]\nkernel = \"Image\"\n";
    expect_refusal("no-dtb", config, &["zcu102", "[devicetree] file"]);
}

#[test]
fn refuses_unknown_boards_and_settings() {
    let rpi = format!("{QEMU_HEAD}[dom0]\nkernel = \"Image\"\n").replace("qemu-arm64", "rpi5");
    expect_refusal("board", &rpi, &["unknown board \"rpi5\"", "zcu102"]);
    let typo = format!("{QEMU_HEAD}[dom0]\nkernel = \"Image\"\nbootarg = \"x\"\n");
    expect_refusal("typo", &typo, &["boot.toml", "bootarg"]);
}
