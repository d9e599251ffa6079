//! The `xl` command line toolstack.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use runx_launch::keys;
use runx_xenstore::Xenstore;

use super::{DomainState, Shutdown, Toolstack, ToolstackError};

/// Runs `xl` from PATH.
pub struct Xl;

/// Runs `xl ARGS`; returns the command line (for messages) and what it did.
fn run<I, S>(args: I) -> Result<(String, Output), ToolstackError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = format!("xl {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    match Command::new("xl").args(&args).stdin(std::process::Stdio::null()).output() {
        Ok(output) => Ok((command, output)),
        Err(source) => Err(ToolstackError::Spawn { command, source }),
    }
}

fn checked<I, S>(args: I) -> Result<String, ToolstackError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (command, output) = run(args)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(ToolstackError::Failed { command, message: failure_message(&output) })
}

/// The domid of the domain called `name`, read from xenstore: what `xl domid` looks up, without
/// starting another xl (each one costs a process start in dom0).
fn domid_by_name(name: &str) -> Result<u32, ToolstackError> {
    let lookup = || -> std::io::Result<Option<u32>> {
        let mut store = Xenstore::connect()?;
        let mut found = None;
        for entry in store.directory("/local/domain")?.unwrap_or_default() {
            let Ok(domid) = entry.parse::<u32>() else { continue };
            if store.read(&keys::of_domain(domid, "name"))?.as_deref() == Some(name) {
                found = found.max(Some(domid));
            }
        }
        Ok(found)
    };
    match lookup() {
        Ok(Some(domid)) => Ok(domid),
        Ok(None) => Err(ToolstackError::Lookup { name: name.to_owned(), why: "no domain has that name".into() }),
        Err(e) => Err(ToolstackError::Lookup { name: name.to_owned(), why: e.to_string() }),
    }
}

/// xl's own words for a failure: its stderr without the noise lines, or the exit status.
fn failure_message(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> =
        stderr.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("Parsing config from")).collect();
    if lines.is_empty() {
        format!("exited with {}", output.status)
    } else {
        with_hint(lines.join("; "))
    }
}

/// libxl failures whose words do not say the cause, and what to do about them.
const HINTS: &[(&str, &str)] = &[(
    "console tty: timed out",
    "xenconsoled did not set up the guest's console within libxl's 10 s: dom0 is short of CPU (many \
     guests booting at once?): give dom0 a larger scheduler weight (`xl sched-credit -d 0 -w 512`) or set \
     boot_on_create = false in the runx host config",
)];

fn with_hint(message: String) -> String {
    match HINTS.iter().find(|(words, _)| message.contains(words)) {
        Some((_, hint)) => format!("{message}: {hint}"),
        None => message,
    }
}

fn gone(message: &str) -> bool {
    message.contains("invalid domain identifier") || message.contains("not found") || message.contains("does not exist")
}

impl Toolstack for Xl {
    fn create(&self, config: &Path, name: &str, paused: bool) -> Result<u32, ToolstackError> {
        let mut args = vec![OsStr::new("create")];
        if paused {
            args.push(OsStr::new("-p"));
        }
        args.push(config.as_os_str());
        checked(args)?;
        domid_by_name(name)
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
        let (command, output) = run(["list", name])?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let message = failure_message(&output);
            return if gone(&message) { Ok(None) } else { Err(ToolstackError::Failed { command, message }) };
        }
        parse_list(&stdout, name).map(Some).ok_or(ToolstackError::Unreadable { command, output: stdout })
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

    #[test]
    fn a_starved_console_daemon_is_named_with_the_fix() {
        // What xl printed when nine guests booted while dom0 created a tenth (the lab, under load).
        let libxl = "libxl: error: libxl_create.c:1976:console_xswait_callback: domain 13 console tty: timed out";
        let message = with_hint(libxl.to_owned());
        assert!(message.starts_with(libxl), "{message}");
        assert!(message.contains("xl sched-credit -d 0 -w 512") && message.contains("boot_on_create"), "{message}");
        assert_eq!(with_hint("libxl: error: kernel not found".into()), "libxl: error: kernel not found");
    }
}
