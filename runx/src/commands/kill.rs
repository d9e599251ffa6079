use std::str::FromStr;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Accepted for runc compatibility: the process is the guest's only one that runx knows.
    #[arg(long, short)]
    all: bool,
    id: String,
    /// A number or a name, with or without SIG (default TERM).
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let signal = parse_signal(&args.signal)?;
    global.runtime()?.kill(&args.id, signal)?;
    Ok(())
}

fn parse_signal(text: &str) -> Result<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).or_else(|_| bail!("{number} is not a signal number"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).or_else(|_| bail!("{text:?} is not a signal: use a number or a name such as TERM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("term").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP);
        assert!(parse_signal("99").is_err());
        assert!(parse_signal("NOPE").is_err());
    }
}
