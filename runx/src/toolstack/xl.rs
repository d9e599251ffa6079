//! The `xl` command line toolstack.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use super::{DomainState, Shutdown, Toolstack, ToolstackError};

/// Runs `xl` from PATH.
pub struct Xl;

fn run<I, S>(args: I) -> Result<Output, ToolstackError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = format!("xl {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    Command::new("xl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| ToolstackError::Spawn { command, source })
}

fn checked<I, S>(args: I) -> Result<String, ToolstackError>
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<OsStr>,
{
    let output = run(args.clone())?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let command = format!(
        "xl {}",
        args.into_iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    );
    Err(ToolstackError::Failed { command, message: failure_message(&output) })
}

/// xl's own words for a failure: its stderr without the noise lines, or the exit status.
fn failure_message(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> =
        stderr.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("Parsing config from")).collect();
    if lines.is_empty() {
        format!("exited with {}", output.status)
    } else {
        lines.join("; ")
    }
}

fn gone(message: &str) -> bool {
    message.contains("invalid domain identifier") || message.contains("not found") || message.contains("does not exist")
}

impl Toolstack for Xl {
    fn create_paused(&self, config: &Path, name: &str) -> Result<u32, ToolstackError> {
        checked([OsStr::new("create"), OsStr::new("-p"), config.as_os_str()])?;
        let out = checked(["domid", name])?;
        out.trim().parse().map_err(|_| ToolstackError::Unreadable { command: format!("xl domid {name}"), output: out })
    }

    fn unpause(&self, name: &str) -> Result<(), ToolstackError> {
        checked(["unpause", name]).map(drop)
    }

    fn pause(&self, name: &str) -> Result<(), ToolstackError> {
        checked(["pause", name]).map(drop)
    }

    fn destroy(&self, name: &str) -> Result<(), ToolstackError> {
        match checked(["destroy", name]) {
            Err(ToolstackError::Failed { message, .. }) if gone(&message) => Ok(()),
            other => other.map(drop),
        }
    }

    fn state(&self, name: &str) -> Result<Option<DomainState>, ToolstackError> {
        let output = run(["list", name])?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let message = failure_message(&output);
            return if gone(&message) {
                Ok(None)
            } else {
                Err(ToolstackError::Failed { command: format!("xl list {name}"), message })
            };
        }
        parse_list(&stdout, name)
            .map(Some)
            .ok_or(ToolstackError::Unreadable { command: format!("xl list {name}"), output: stdout })
    }
}

/// Reads one domain's row of `xl list`: `Name ID Mem VCPUs State Time(s)`, the state being
/// six flag columns `rbpsRd`, R the shutdown reason's letter (`-rscwS`: poweroff, reboot,
/// suspend, crash, watchdog, soft reset).
fn parse_list(output: &str, name: &str) -> Option<DomainState> {
    let row = output.lines().skip(1).find(|l| l.split_whitespace().next() == Some(name))?;
    let fields: Vec<&str> = row.split_whitespace().collect();
    let domid = fields.get(1)?.parse().ok()?;
    let flags = fields.get(4)?.as_bytes();
    if flags.len() != 6 {
        return None;
    }
    let ended = match (flags[3], flags[4]) {
        (b's', b'-') => Some(Shutdown::Poweroff),
        (b's', b'r') => Some(Shutdown::Reboot),
        (b's', b's') => Some(Shutdown::Suspend),
        (b's', b'c') => Some(Shutdown::Crash),
        (b's', b'w') => Some(Shutdown::Watchdog),
        (b's', b'S') => Some(Shutdown::SoftReset),
        (b'-', _) => None,
        _ => return None,
    };
    Some(DomainState { domid, paused: flags[2] == b'p', ended, dying: flags[5] == b'd' })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xl_list_rows() {
        let out = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
                   web                                          7    64     1     --p---       0.0\n";
        let s = parse_list(out, "web").unwrap();
        assert_eq!(s, DomainState { domid: 7, paused: true, ended: None, dying: false });
        for (flags, reason) in
            [("---s--", Shutdown::Poweroff), ("---sc-", Shutdown::Crash), ("---sw-", Shutdown::Watchdog)]
        {
            assert_eq!(parse_list(&out.replace("--p---", flags), "web").unwrap().ended, Some(reason));
        }
        assert!(parse_list(out, "other").is_none());
        assert!(parse_list("Name ID\nweb 7 64 1 x 0.0\n", "web").is_none());
    }
}
