use anyhow::Result;

use super::list::ListFormat;
use super::Global;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short, value_enum, default_value = "table")]
    format: ListFormat,
    id: String,
    /// ps(1) options (table format); ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// The container's host processes: only its monitor (the guest's processes are not the host's).
pub fn run(args: Args, global: &Global) -> Result<()> {
    let runtime = global.cleanup_runtime()?;
    let (_, state) = runtime.load(&args.id)?;
    let pids: Vec<i32> = if runx::state::monitor_alive(&state) { vec![state.pid] } else { Vec::new() };
    match args.format {
        ListFormat::Json => println!("{}", serde_json::to_string(&pids)?),
        ListFormat::Table => {
            println!("PID   CMD");
            for pid in pids {
                println!("{pid:<5} runx monitor {}", state.id);
            }
        }
    }
    Ok(())
}
