//! `cargo xtask`: the developer and CI tasks of the runx workspace.

mod cmd;
mod lab;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use lab::cache::Cache;
use lab::Arch;

#[derive(Parser)]
#[command(about = "runx developer tasks: the Xen lab, tests, demo")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Args)]
struct LabOptions {
    /// Architectures to boot (default: both).
    #[arg(long, value_enum)]
    arch: Vec<Arch>,
    /// Rebuild cached downloads and images instead of reusing them.
    #[arg(long)]
    fresh: bool,
}

impl LabOptions {
    fn arches(&self) -> Vec<Arch> {
        if self.arch.is_empty() {
            Arch::ALL.to_vec()
        } else {
            self.arch.clone()
        }
    }

    fn cache(&self) -> Result<Cache> {
        Ok(Cache::new(lab::default_cache_root(&lab::workspace_root()?), self.fresh))
    }
}

#[derive(Subcommand)]
enum Task {
    /// Boot Xen under QEMU and run the lab's test cases in dom0.
    Lab(LabOptions),
}

fn lab_test(opts: &LabOptions) -> Result<bool> {
    let cache = opts.cache()?;
    let mut passed = true;
    for arch in opts.arches() {
        let report = lab::cases::run(&cache, arch, &lab::cases::suite(arch))?;
        report.print();
        passed &= report.passed();
    }
    Ok(passed)
}

fn main() -> Result<ExitCode> {
    let passed = match Cli::parse().command {
        Task::Lab(opts) => lab_test(&opts)?,
    };
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
