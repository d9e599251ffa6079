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
    /// A number or a name, with or without SIG (default TERM); real-time signals as RTMIN+N
    /// or RTMAX-N (systemd images stop on SIGRTMIN+3).
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let signo = parse_signal(&args.signal)?;
    global.cleanup_runtime()?.kill(&args.id, signo)?;
    Ok(())
}

/// Linux's real-time signal range as the kernel numbers it (glibc keeps 32 and 33 for itself;
/// `SIGRTMIN` in a guest's C library is 34, as here).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

fn parse_signal(text: &str) -> Result<i32> {
    if let Ok(number) = text.parse::<i32>() {
        if Signal::try_from(number).is_ok() || (RTMIN..=RTMAX).contains(&number) {
            return Ok(number);
        }
        bail!("{number} is not a signal number: use 1-31 or {RTMIN}-{RTMAX}");
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(signo) = realtime(name) {
        return signo;
    }
    Signal::from_str(&format!("SIG{name}"))
        .map(|s| s as i32)
        .or_else(|_| bail!("{text:?} is not a signal: use a number or a name such as TERM or RTMIN+3"))
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`.
fn realtime(name: &str) -> Option<Result<i32>> {
    let (base, offset) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (RTMIN, if rest.is_empty() { Some(0) } else { rest.strip_prefix('+').and_then(|n| n.parse::<i32>().ok()) })
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        (
            RTMAX,
            if rest.is_empty() {
                Some(0)
            } else {
                rest.strip_prefix('-').and_then(|n| n.parse::<i32>().ok().map(|n| -n))
            },
        )
    } else {
        return None;
    };
    let signo = offset.map(|o| base + o).filter(|s| (RTMIN..=RTMAX).contains(s));
    Some(signo.ok_or_else(|| {
        anyhow::anyhow!("{name} is not a real-time signal: use RTMIN+N or RTMAX-N within {RTMIN}-{RTMAX}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL as i32);
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM as i32);
        assert_eq!(parse_signal("term").unwrap(), Signal::SIGTERM as i32);
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP as i32);
        assert!(parse_signal("99").is_err());
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn real_time_signals_as_systemd_images_need_them() {
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse_signal("RTMIN+3").unwrap(), 37);
        assert_eq!(parse_signal("rtmin").unwrap(), 34);
        assert_eq!(parse_signal("RTMAX-1").unwrap(), 63);
        assert_eq!(parse_signal("37").unwrap(), 37);
        assert_eq!(parse_signal("64").unwrap(), 64);
        assert!(parse_signal("RTMIN+31").is_err());
        assert!(parse_signal("RTMIN-1").is_err());
        assert!(parse_signal("32").is_err());
    }
}
