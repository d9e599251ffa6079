//! `cargo xtask`: the developer and CI tasks of the runx workspace.

mod arch;
mod bench;
mod ci;
mod cmd;
mod lab;
mod progress;
mod shipped;
mod workspace;
mod yocto;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use arch::Arch;
use lab::cache::Cache;
use lab::cases::Plan;
use lab::payload::{Case, CaseResult};
use lab::runx_runtime;

#[derive(Parser)]
#[command(about = "runx developer tasks: the Xen lab, tests, demo, benchmarks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Args)]
struct LabOptions {
    /// Architecture to boot; repeat for several (default: x86_64 and arm64).
    #[arg(long, value_enum)]
    arch: Vec<Arch>,
    /// Rebuild downloads and images instead of reusing the cached ones.
    #[arg(long)]
    fresh: bool,
    /// A case script of your own (`NAME.sh`), run in dom0 after the built-in cases of each
    /// architecture's main boot, with the lab's runx, containerd and images (docs/lab.md).
    #[arg(long, value_name = "FILE")]
    case_file: Vec<PathBuf>,
    /// Time limit of each --case-file case.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    case_timeout: u32,
    /// Run only the --case-file cases (one boot per architecture).
    #[arg(long, requires = "case_file")]
    skip_builtin: bool,
}

impl LabOptions {
    fn arches(&self, default: &[Arch]) -> Vec<Arch> {
        if self.arch.is_empty() {
            default.to_vec()
        } else {
            self.arch.clone()
        }
    }

    fn cache(&self) -> Result<Cache> {
        Ok(Cache::new(lab::default_cache_root(&workspace::root()?), self.fresh))
    }

    fn user_cases(&self) -> Result<Vec<Case>> {
        self.case_file.iter().map(|path| Case::from_file(path, self.case_timeout)).collect()
    }
}

#[derive(Subcommand)]
enum Task {
    /// Boot Xen under QEMU and run the lab's test cases in dom0.
    Lab(LabOptions),
    /// Boot Xen on the embedded default (arm64 QEMU through u-boot) and run a container with containerd and runx.
    Demo(LabOptions),
    /// Run the benchmarks side by side with their baselines and print ratios.
    Bench(LabOptions),
    /// Build the runx guest kernel (tinyconfig + meta-runx's fragments) and print its path (default: x86_64).
    GuestKernel(LabOptions),
    /// Everything CI runs: fmt, clippy, unit tests, the arm64 cross-build, meta-runx's checks, the lab on both arches.
    Ci(LabOptions),
    /// Write meta-runx's crates list (crate:// SRC_URI) from Cargo.lock, offline.
    YoctoCrates {
        /// Only check that the checked-in list matches Cargo.lock.
        #[arg(long)]
        check: bool,
        /// Read this Cargo.lock instead of the workspace's.
        #[arg(long)]
        lockfile: Option<PathBuf>,
    },
    /// meta-runx's checks that need no bitbake: crates list, layer structure, kas schema, oelint-adv.
    LayerCheck,
}

fn lab_test(cache: &Cache, arches: &[Arch], user_cases: &[Case], builtin: bool) -> Result<bool> {
    let mut passed = true;
    for &arch in arches {
        for (plan, cases) in lab::cases::suite_with(arch, user_cases, builtin) {
            let report = lab::cases::run(cache, plan, &cases)?;
            report.print();
            passed &= report.passed();
        }
    }
    Ok(passed)
}

/// Boots `arch` as the demo does, has containerd run one container through runx, and prints
/// the command, what the container printed and its exit status.
fn demo(cache: &Cache, arches: &[Arch]) -> Result<bool> {
    let mut passed = true;
    for &arch in arches {
        let mut report = lab::cases::run(cache, Plan::main(arch), &[runx_runtime::DEMO])?;
        let run = runx_runtime::DemoRun::read(&report.share);
        println!(
            "== Xen 4.17 on {} (QEMU{}): containerd 1.6 in dom0 runs a container with runx, in its own Xen guest",
            arch.name(),
            if arch == Arch::Arm64 { ", u-boot -> boot.scr -> Xen -> dom0" } else { "" }
        );
        if !run.command.is_empty() {
            println!("$ {}", run.command);
            print!("{}", run.output);
            println!("== the container exited with status {}", run.status);
        }
        // Checked on the host: what the user reads must be what passed.
        let check = run.check(arch);
        let name = "the container's line, exit status 0".to_owned();
        report.results.push(CaseResult { name, passed: check.is_ok(), seconds: 0, detail: check.err() });
        report.print();
        passed &= report.passed();
    }
    Ok(passed)
}

fn main() -> Result<ExitCode> {
    let passed = match Cli::parse().task {
        Task::Lab(opts) => lab_test(&opts.cache()?, &opts.arches(&Arch::ALL), &opts.user_cases()?, !opts.skip_builtin)?,
        Task::Demo(opts) => demo(&opts.cache()?, &opts.arches(&[Arch::Arm64]))?,
        Task::Bench(opts) => bench::run(&opts.cache()?, &opts.arches(&Arch::ALL))?,
        Task::GuestKernel(opts) => {
            let cache = opts.cache()?;
            for arch in opts.arches(&[Arch::X86_64]) {
                println!("{}", lab::guest_kernel::build(&cache, arch)?.display());
            }
            true
        }
        Task::YoctoCrates { check, lockfile } => {
            yocto::yocto_crates(check, lockfile.as_deref())?;
            true
        }
        Task::LayerCheck => {
            yocto::layer_check()?;
            true
        }
        Task::Ci(opts) => {
            ci::static_checks()?;
            yocto::layer_check()?;
            // The example case file, as an integrator would pass it: proves --case-file on Xen.
            let example = Case::from_file(&workspace::root()?.join(ci::EXAMPLE_CASE), 300)?;
            let mut user_cases = opts.user_cases()?;
            user_cases.push(example);
            lab_test(&opts.cache()?, &opts.arches(&Arch::ALL), &user_cases, true)?
        }
    };
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
