//! One module per verb; each parses its own arguments and prints what runc would.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod monitor;
mod pause;
mod ps;
mod spec;
mod start;
mod state;
mod terminal;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use runx::container::Runtime;
use runx::host_config::HostConfig;
use runx::log::Log;
use runx::network::Netlink;
use runx::state::Store;
use runx::xen::Xl;

pub struct Global {
    pub root: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a container: its domain (booting to runx-init, which waits for `start`; paused for a
    /// kernel of the container's own) and the monitor whose pid containerd waits for.
    Create(create::Args),
    /// Start the container's process (tell runx-init through xenstore, or unpause the domain).
    Start(start::Args),
    /// Print the state of a container as JSON.
    State(state::Args),
    /// Send a signal to the container's process; KILL destroys its domain.
    Kill(kill::Args),
    /// Delete a container and everything runx kept for it.
    Delete(delete::Args),
    /// List containers.
    List(list::Args),
    /// Print what this runtime supports, as JSON (runtime-spec features).
    Features,
    /// Pause a running container (its domain).
    Pause(pause::Args),
    /// Resume a paused container.
    Resume(pause::Args),
    /// Print the host processes of a container: its monitor.
    Ps(ps::Args),
    /// Write a default config.json for a runx bundle.
    Spec(spec::Args),
    /// Run another process in a running container: runx-init starts it in the guest, and its
    /// stdio, signals and exit status travel over a vchan.
    Exec(Box<exec::Args>),
    /// Internal: the relay `exec --detach` leaves running for the process.
    #[command(hide = true)]
    ExecRelay(exec::RelayArgs),
    /// Change a running container's memory, vcpus and pinning, within what its domain was
    /// created with.
    Update(Box<update::Args>),
    /// Print what Xen counts for a container (CPU time, memory, its vif's traffic) as runc's
    /// stats JSON, every --interval or once with --stats.
    Events(events::Args),
    /// Internal: the monitor process that `create` starts.
    #[command(hide = true)]
    Monitor(monitor::Args),
}

impl Global {
    /// The runtime for `create`, which needs a valid host config.
    fn runtime(&self) -> Result<Runtime> {
        Ok(self.runtime_with(HostConfig::load()?))
    }

    /// The runtime for the verbs on containers that exist: they work whatever the host config
    /// says, so that a broken config never keeps a container from being stopped and removed.
    fn cleanup_runtime(&self) -> Result<Runtime> {
        let (host, error) = HostConfig::load_for_existing();
        let runtime = self.runtime_with(host);
        if let Some(e) = error {
            eprintln!("runx: warning: {e}: using the state root {}", runtime.store.root().display());
        }
        Ok(runtime)
    }

    fn runtime_with(&self, host: HostConfig) -> Runtime {
        let root = self.root.clone().unwrap_or_else(|| host.root.clone());
        Runtime { store: Store::new(&root), host, xen: Box::<Xl>::default(), net: Box::<Netlink>::default() }
    }
}
pub fn run(command: Command, global: &Global, log: &mut Log) -> Result<ExitCode> {
    if !matches!(command, Command::Monitor(_) | Command::Exec(_) | Command::ExecRelay(_)) {
        // Like runc and the C tools: a reader that goes away (`runx state | head`) ends runx
        // quietly instead of failing a print. The monitor and exec's relay keep SIGPIPE ignored:
        // they must outlive a reader of the process's output and handle the write errors themselves.
        // SAFETY: no other thread exists yet, and SIG_DFL needs no handler.
        unsafe {
            let _ = nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
        }
    }
    match command {
        Command::Create(args) => create::run(args, global, log),
        Command::Start(args) => start::run(args, global),
        Command::State(args) => state::run(args, global),
        Command::Kill(args) => kill::run(args, global),
        Command::Delete(args) => delete::run(args, global),
        Command::List(args) => list::run(args, global),
        Command::Features => features::run(),
        Command::Pause(args) => pause::run(args, global, true),
        Command::Resume(args) => pause::run(args, global, false),
        Command::Ps(args) => ps::run(args, global),
        Command::Spec(args) => spec::run(args),
        Command::Update(args) => update::run(*args, global),
        Command::Events(args) => events::run(args, global),
        Command::Monitor(args) => return monitor::run(args),
        Command::Exec(args) => return exec::run(*args, global),
        Command::ExecRelay(args) => return exec::relay(args),
    }
    .map(|()| ExitCode::SUCCESS)
}
