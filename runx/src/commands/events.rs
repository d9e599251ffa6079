use std::time::Duration;

use anyhow::{bail, Result};
use runx::stats::Event;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Print the container's stats once and exit.
    #[arg(long)]
    stats: bool,
    /// How often to print stats while the container runs (a Go duration, as runc takes:
    /// 5s, 500ms, 1m30s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    id: String,
}

/// Prints stats events (runc's JSON, one per line) until the container stops.
pub fn run(args: Args, global: &Global) -> Result<()> {
    let runtime = global.cleanup_runtime()?;
    let mut first = true;
    loop {
        let stats = match runtime.stats(&args.id) {
            Ok(stats) => stats,
            // The container stopped while streaming: the stream ends, as runc's does.
            Err(_) if !first => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        println!("{}", serde_json::to_string(&Event { kind: "stats", id: &args.id, data: stats })?);
        if args.stats {
            return Ok(());
        }
        first = false;
        std::thread::sleep(args.interval);
    }
}

/// A Go `time.Duration` string: decimal numbers each with a unit (ns, us, µs, ms, s, m, h).
fn parse_duration(text: &str) -> Result<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        bail!("an empty duration: give e.g. 5s or 500ms");
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let unit_end =
            rest[number_end..].find(|c: char| c.is_ascii_digit() || c == '.').map_or(rest.len(), |i| number_end + i);
        let (number, unit) = (&rest[..number_end], &rest[number_end..unit_end]);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => bail!("duration {text:?}: {unit:?} is not a unit (ns, us, ms, s, m, h)"),
        };
        let value: f64 =
            number.parse().map_err(|_| anyhow::anyhow!("duration {text:?}: {number:?} is not a number"))?;
        total += value * seconds;
        rest = &rest[unit_end..];
    }
    if total <= 0.0 {
        bail!("duration {text:?} must be positive");
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["", "5", "s", "5x", "0s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
