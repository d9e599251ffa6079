//! The host side of a lab run: a share folder holding the payload (the case
//! scripts and what they need), and the results the cases leave in it.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const LAB_LIB: &str = include_str!("assets/lab-lib.sh");
const CASE_LIB: &str = include_str!("assets/case-lib.sh");

/// What a case uses beyond dom0 and the lab guest; a boot stages each need once, for every case
/// that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// containerd on dom0's disk (mounted at /rootfs) and the busybox image for it to import.
    Containerd,
    /// runx, its guest kernel and its base initramfs, under `runtime/`.
    Runtime,
    /// The runx-init guests and their benchmark's guests, under `runx/` (x86_64).
    RunxGuests,
    /// The images that carry their own kernel, under `images/` (x86_64).
    KernelImages,
    /// A Debian bookworm minbase image, `images/lab-debian.tar` (x86_64).
    DebianImage,
}

impl Need {
    /// What running containers through containerd and runx takes.
    pub const RUNX_CONTAINERS: &'static [Need] = &[Need::Containerd, Need::Runtime];
}

/// One test case run inside dom0: the project's own (`include_str!`) or an integrator's
/// (`--case-file`).
#[derive(Debug, Clone)]
pub struct Case {
    pub name: Cow<'static, str>,
    /// Shell script run by dom0's busybox sh; exit 0 = pass.
    pub script: Cow<'static, str>,
    pub timeout_secs: u32,
    /// What the boot stages for it.
    pub needs: &'static [Need],
    /// Checks the host makes of what the case left in the share, each a result of its own.
    pub host_checks: Option<fn(&Share) -> Vec<CaseResult>>,
}

impl Case {
    pub const fn builtin(name: &'static str, script: &'static str, timeout_secs: u32) -> Self {
        Self { name: Cow::Borrowed(name), script: Cow::Borrowed(script), timeout_secs, needs: &[], host_checks: None }
    }

    pub const fn needing(mut self, needs: &'static [Need]) -> Self {
        self.needs = needs;
        self
    }

    pub const fn checked_by(mut self, host_checks: fn(&Share) -> Vec<CaseResult>) -> Self {
        self.host_checks = Some(host_checks);
        self
    }

    /// A case script of the user's: named after its file, run like the built-in ones, with
    /// what the runtime's cases have.
    pub fn from_file(path: &Path, timeout_secs: u32) -> Result<Self> {
        // A name the payload's `run_case NAME` and the results file can carry as one word.
        let script =
            fs::read_to_string(path).with_context(|| format!("cannot read the case file {}", path.display()))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!("case file {}: name it NAME.sh with letters, digits, '-', '_' or '.' in NAME (it becomes the case's name)", path.display());
        }
        Ok(Self {
            name: Cow::Owned(name),
            script: Cow::Owned(script),
            timeout_secs,
            needs: Need::RUNX_CONTAINERS,
            host_checks: None,
        })
    }
}

/// How one case ended, as dom0 reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    pub seconds: u64,
    /// Why a host-side check failed (dom0's cases keep their reasons in their logs).
    pub detail: Option<String>,
}

/// A fresh share folder for one boot.
pub struct Share {
    pub dir: PathBuf,
}

impl Share {
    pub fn create(dir: PathBuf, cases: &[Case]) -> Result<Self> {
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(dir.join("cases"))?;
        fs::write(dir.join("lab-lib.sh"), LAB_LIB)?;
        fs::write(dir.join("case-lib.sh"), CASE_LIB)?;
        let mut payload = String::from(". /host/lab-lib.sh\n");
        for case in cases {
            fs::write(dir.join("cases").join(format!("{}.sh", case.name)), case.script.as_bytes())?;
            payload.push_str(&format!("run_case {} {}\n", case.name, case.timeout_secs));
        }
        fs::write(dir.join("payload.sh"), payload)?;
        Ok(Self { dir })
    }

    /// Places a host file in the share at `rel` (hard-linked when possible).
    pub fn add_file(&self, rel: &str, src: &Path) -> Result<()> {
        let dest = self.dir.join(rel);
        fs::create_dir_all(dest.parent().expect("share paths have a folder"))?;
        super::link_or_copy(src, &dest)
    }

    /// The results of every case in `cases`; a case without a RESULT line failed.
    pub fn results(&self, cases: &[Case]) -> Result<Vec<CaseResult>> {
        let text = fs::read_to_string(self.dir.join("results")).unwrap_or_default();
        let reported = parse_results(&text)?;
        Ok(cases
            .iter()
            .map(|case| {
                reported.iter().find(|r| r.name == case.name).cloned().unwrap_or(CaseResult {
                    name: case.name.clone().into_owned(),
                    passed: false,
                    seconds: 0,
                    detail: None,
                })
            })
            .collect())
    }

    /// A file the payload wrote into the share (empty when it wrote none).
    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dir.join(rel)).unwrap_or_default()
    }

    /// What a case printed, for reports.
    pub fn case_log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join("logs").join(format!("{name}.log")))
            .unwrap_or_else(|_| "(the case left no log: dom0 never ran it)".to_owned())
    }
}

/// Parses `RESULT<TAB>name<TAB>pass|fail<TAB>seconds` lines.
fn parse_results(text: &str) -> Result<Vec<CaseResult>> {
    let mut results = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let ["RESULT", name, status, seconds] = fields[..] else {
            bail!("malformed result line from dom0: {line:?}");
        };
        let passed = match status {
            "pass" => true,
            "fail" => false,
            other => bail!("unknown status {other:?} in result line {line:?}"),
        };
        results.push(CaseResult { name: name.to_owned(), passed, seconds: seconds.parse().unwrap_or(0), detail: None });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        let results = parse_results("RESULT\txl-create\tpass\t12\nRESULT\tctr\tfail\t3\n").unwrap();
        assert_eq!(
            results,
            [
                CaseResult { name: "xl-create".into(), passed: true, seconds: 12, detail: None },
                CaseResult { name: "ctr".into(), passed: false, seconds: 3, detail: None }
            ]
        );
        assert!(parse_results("RESULT\tx\tmaybe\t1\n").is_err());
        assert!(parse_results("garbage\n").is_err());
    }

    #[test]
    fn a_case_file_becomes_a_case_named_after_it() {
        let dir = std::env::temp_dir().join(format!("runx-case-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("my-app.sh"), "echo ok\n").unwrap();
        let case = Case::from_file(&dir.join("my-app.sh"), 300).unwrap();
        assert_eq!((case.name.as_ref(), case.script.as_ref(), case.timeout_secs), ("my-app", "echo ok\n", 300));
        assert_eq!(case.needs, Need::RUNX_CONTAINERS);
        fs::write(dir.join("two words.sh"), "true\n").unwrap();
        let err = Case::from_file(&dir.join("two words.sh"), 1).unwrap_err().to_string();
        assert!(err.contains("name it NAME.sh"), "{err}");
        assert!(Case::from_file(&dir.join("missing.sh"), 1).unwrap_err().to_string().contains("cannot read"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_case_without_a_result_line_fails() {
        let dir = std::env::temp_dir().join(format!("runx-share-{}", std::process::id()));
        let cases = [Case::builtin("never-ran", "true", 1)];
        let share = Share::create(dir.clone(), &cases).unwrap();
        let payload = fs::read_to_string(dir.join("payload.sh")).unwrap();
        assert!(payload.contains("run_case never-ran 1"), "{payload}");
        let results = share.results(&cases).unwrap();
        assert_eq!(results, [CaseResult { name: "never-ran".into(), passed: false, seconds: 0, detail: None }]);
        fs::remove_dir_all(dir).unwrap();
    }
}
