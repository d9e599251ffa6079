//! `runx-tools image` as a user runs it: the archive it writes is what `ctr images import`
//! reads, with the kernel where the image's label and env say.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    tar::Archive::new(archive)
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), data)
        })
        .collect()
}

fn blob(files: &[(String, Vec<u8>)], digest: &str) -> Vec<u8> {
    let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    files.iter().find(|(p, _)| *p == name).map(|(_, d)| d.clone()).unwrap()
}

#[test]
fn packs_a_kernel_its_label_env_and_command_line() {
    let dir = std::env::temp_dir().join(format!("runx-tools-image-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("blinky.elf"), b"\x7fELF blinky").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_runx-tools"))
        .args(["image", "example.com/rtos/blinky:1.0", "--arch", "arm64", "--kernel"])
        .arg(dir.join("blinky.elf"))
        .args(["--label", "org.example.board=zcu102", "-o"])
        .arg(dir.join("blinky.tar"))
        .args(["--", "console=hvc0", "rate=10"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = files(&fs::read(dir.join("blinky.tar")).unwrap());
    let index: Value = serde_json::from_slice(&files.iter().find(|(p, _)| p == "index.json").unwrap().1).unwrap();
    assert_eq!(index["manifests"][0]["annotations"]["io.containerd.image.name"], "example.com/rtos/blinky:1.0");
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "arm64");
    let manifest: Value =
        serde_json::from_slice(&blob(&files, index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let config: Value = serde_json::from_slice(&blob(&files, manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["config"]["Labels"]["io.runx.kernel"], "/boot/blinky.elf");
    assert_eq!(config["config"]["Labels"]["org.example.board"], "zcu102");
    assert_eq!(config["config"]["Env"][0], "RUNX_KERNEL=/boot/blinky.elf");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["console=hvc0", "rate=10"]));
    let layer = blob(&files, manifest["layers"][0]["digest"].as_str().unwrap());
    let mut diff = Vec::new();
    flate2::read::GzDecoder::new(layer.as_slice()).read_to_end(&mut diff).unwrap();
    let kernel = files_named(&diff, "boot/blinky.elf");
    assert_eq!(kernel, b"\x7fELF blinky");

    let missing = Command::new(env!("CARGO_BIN_EXE_runx-tools"))
        .args(["image", "example.com/x:1", "--kernel", "/nonexistent/k", "-o"])
        .arg(dir.join("x.tar"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/k"));
    assert!(!Path::new(&dir.join("x.tar")).exists(), "a failed run leaves no archive");
    fs::remove_dir_all(dir).unwrap();
}

fn files_named(tar_bytes: &[u8], name: &str) -> Vec<u8> {
    files(tar_bytes).into_iter().find(|(p, _)| p == name).map(|(_, d)| d).unwrap()
}
