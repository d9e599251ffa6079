//! `runx-tools xl-config` as a user runs it: templates for the boards,
//! device assignment from the board profile, and refusals.

use std::process::{Command, Output};

fn xl_config(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runx-tools")).arg("xl-config").args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn plain_guest_on_qemu() {
    let out =
        xl_config(&["--name", "hello", "--kernel", "/boot/Image", "--memory-mib", "64", "--cmdline", "console=hvc0"]);
    assert_eq!(
        stdout(&out),
        "name = \"hello\"\ntype = \"pvh\"\nkernel = \"/boot/Image\"\nextra = \"console=hvc0\"\nmemory = 64\nvcpus = 1\n"
    );
}

#[test]
fn the_decks_ttc_guest_on_zcu102_pinned_in_a_cpupool() {
    let out = xl_config(&[
        "--board",
        "zcu102",
        "--name",
        "baremetal",
        "--kernel",
        "/usr/share/demo/ttc-demo.bin",
        "--memory-mib",
        "16",
        "--passthrough",
        "ttc0",
        "--device-tree",
        "/usr/share/demo/ttc.dtb",
        "--pin",
        "3",
        "--cpupool",
        "rt",
        "--vuart",
    ]);
    let text = stdout(&out);
    for line in [
        "device_tree = \"/usr/share/demo/ttc.dtb\"\n",
        "iomem = [ \"0xff110,1\" ]\n",
        "irqs = [ 68, 69, 70 ]\n",
        "cpus = \"3\"\n",
        "pool = \"rt\"\n",
        "vuart = \"sbsa_uart\"\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    // The TTC sits behind no IOMMU: dtdev only when asked for.
    assert!(!text.contains("dtdev"), "{text}");
}

#[test]
fn dtdev_on_request() {
    let out = xl_config(&[
        "--board",
        "zcu102",
        "--name",
        "g",
        "--kernel",
        "k",
        "--passthrough",
        "ttc0",
        "--device-tree",
        "t.dtb",
        "--dtdev",
    ]);
    assert!(stdout(&out).contains("dtdev = [ \"/axi/timer@ff110000\" ]\n"));
}

#[test]
fn the_dom0less_form_is_a_boot_config_block() {
    let out = xl_config(&[
        "--board",
        "zcu102",
        "--name",
        "baremetal",
        "--kernel",
        "ttc-demo.bin",
        "--memory-mib",
        "16",
        "--device-tree",
        "ttc.dtb",
        "--vuart",
        "--dom0less",
    ]);
    assert_eq!(
        stdout(&out),
        "[[domu]]\nname = \"baremetal\"\nkernel = \"ttc-demo.bin\"\npassthrough_dtb = \"ttc.dtb\"\nmemory_mib = 16\nvcpus = 1\nvpl011 = true\n"
    );
}

#[test]
fn refuses_unknown_devices_and_passthrough_without_a_tree() {
    let out = xl_config(&["--board", "zcu102", "--name", "g", "--kernel", "k", "--passthrough", "gpu"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no assignable device \"gpu\"") && err.contains("ttc0"), "{err}");
    let out = xl_config(&["--board", "zcu102", "--name", "g", "--kernel", "k", "--passthrough", "ttc0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--device-tree"), "{err}");
}
