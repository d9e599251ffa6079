//! `runx`: a runc-compatible command line that runs each container as its own Xen guest.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use runx::log::{Format, Log};

/// What `--version` prints, with the runtime-spec line runc and crun print.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", runx::spec_version!());

/// runx: run each OCI container as its own Xen guest.
#[derive(Parser)]
#[command(name = "runx", version = VERSION, about)]
struct Cli {
    /// Where container state lives (default: `root` of /etc/runx/config.toml, /run/runx).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Write log lines (errors, and with --debug more) to this file instead of stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Accepted for runc compatibility: a guest's resources are set on the domain, not in cgroups.
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: commands::Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match cli.log_format {
        LogFormat::Text => Format::Text,
        LogFormat::Json => Format::Json,
    };
    let mut log = match Log::open(cli.log.as_deref(), format, cli.debug) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("runx: cannot open the log file: {e}");
            return ExitCode::FAILURE;
        }
    };
    let global = commands::Global { root: cli.root };
    let code = match commands::run(cli.command, &global, &mut log) {
        Ok(code) => code,
        Err(e) => {
            log.error(&message(&e));
            ExitCode::FAILURE
        }
    };
    log.debug(&own_cpu_time());
    code
}

/// The error and its causes, each said once: runx's typed errors already quote their source.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// This process's CPU time, without its children (`xl`): what runx itself costs.
fn own_cpu_time() -> String {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1000.0 + t.tv_usec() as f64 / 1000.0;
            format!(
                "cpu: {:.1} ms (user {:.1}, system {:.1})",
                ms(usage.user_time()) + ms(usage.system_time()),
                ms(usage.user_time()),
                ms(usage.system_time())
            )
        }
        Err(e) => format!("cpu: unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
