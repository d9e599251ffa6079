//! The real Xen: the `xl` command line toolstack, xenstored, and privcmd for the console ring.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::process::{Command, Output};

use std::os::fd::AsRawFd;

use runx_vchan::{Offer, Vchan};
use runx_xenstore::Xenstore;

use super::console_ring::PrivcmdRing;
use super::{Adjustment, Channel, ConsoleRing, DomainState, DomainUsage, Shutdown, Watch, Xen, XenError};

/// Runs `xl` from PATH, and talks to xenstored over one connection, opened when first needed.
#[derive(Default)]
pub struct Xl {
    store: RefCell<Option<Xenstore>>,
}

impl Xl {
    fn with_store<T>(&self, f: impl FnOnce(&mut Xenstore) -> io::Result<T>) -> Result<T, XenError> {
        let mut slot = self.store.borrow_mut();
        if slot.is_none() {
            *slot = Some(Xenstore::connect()?);
        }
        Ok(f(slot.as_mut().expect("connected above"))?)
    }
}

/// Runs `xl ARGS`; returns the command line (for messages) and what it did.
fn run<I, S>(args: I) -> Result<(String, Output), XenError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = format!("xl {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    match Command::new("xl").args(&args).stdin(std::process::Stdio::null()).output() {
        Ok(output) => Ok((command, output)),
        Err(source) => Err(XenError::Spawn { command, source }),
    }
}

fn checked<I, S>(args: I) -> Result<String, XenError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (command, output) = run(args)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(XenError::Failed { command, message: failure_message(&output) })
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

impl Xen for Xl {
    fn create(&self, config: &Path, paused: bool) -> Result<(), XenError> {
        let mut args = vec![OsStr::new("create")];
        if paused {
            args.push(OsStr::new("-p"));
        }
        args.push(config.as_os_str());
        checked(args).map(drop)
    }

    fn pause_domid(&self, domid: u32) -> Result<(), XenError> {
        checked(["pause", &domid.to_string()]).map(drop)
    }

    fn unpause_domid(&self, domid: u32) -> Result<(), XenError> {
        checked(["unpause", &domid.to_string()]).map(drop)
    }

    fn destroy_domid(&self, domid: u32) -> Result<(), XenError> {
        match checked(["destroy", &domid.to_string()]) {
            Err(XenError::Failed { message, .. }) if gone(&message) => Ok(()),
            other => other.map(drop),
        }
    }

    fn state_domid(&self, domid: u32) -> Result<Option<DomainState>, XenError> {
        let (command, output) = run(["list", &domid.to_string()])?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let message = failure_message(&output);
            return if gone(&message) { Ok(None) } else { Err(XenError::Failed { command, message }) };
        }
        parse_list(&stdout, domid).map(Some).ok_or(XenError::Unreadable { command, output: stdout })
    }

    fn usage_domid(&self, domid: u32) -> Result<Option<DomainUsage>, XenError> {
        let id = domid.to_string();
        let (command, output) = run(["list", &id])?;
        if !output.status.success() {
            let message = failure_message(&output);
            return if gone(&message) { Ok(None) } else { Err(XenError::Failed { command, message }) };
        }
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let memory_mib = parse_list_memory(&stdout, domid).ok_or(XenError::Unreadable { command, output: stdout })?;
        let command = format!("xl vcpu-list {id}");
        let stdout = checked(["vcpu-list", &id])?;
        let vcpus = parse_vcpu_list(&stdout, domid).ok_or(XenError::Unreadable { command, output: stdout })?;
        let static_max = self.read(&runx_launch::keys::of_domain(domid, "memory/static-max"))?;
        let max_memory_kib = static_max.and_then(|v| v.parse().ok()).unwrap_or(memory_mib * 1024);
        Ok(Some(DomainUsage {
            vcpus_online: vcpus.iter().filter(|v| v.online).count() as u32,
            vcpu_time_ns: vcpus.iter().map(|v| v.time_ns).collect(),
            memory_kib: memory_mib * 1024,
            max_memory_kib,
        }))
    }

    fn adjust_domid(&self, domid: u32, adjustment: &Adjustment) -> Result<(), XenError> {
        let id = domid.to_string();
        match adjustment {
            Adjustment::MemoryMib(mib) => checked(["mem-set", &id, &format!("{mib}m")]).map(drop),
            // Within the domain's maximum, which it was created with: xl's check against the
            // host's CPU count is for growing past it.
            Adjustment::Vcpus(count) => checked(["vcpu-set", "--ignore-host", &id, &count.to_string()]).map(drop),
            Adjustment::Pin(cpus) => checked(["vcpu-pin", &id, "all", cpus]).map(drop),
            // The cap is the scheduler's: credit2 (Xen's default) first, then credit.
            Adjustment::CapPercent(cap) => {
                let cap = cap.to_string();
                checked(["sched-credit2", "-d", &id, "-c", &cap])
                    .or_else(|_| checked(["sched-credit", "-d", &id, "-c", &cap]))
                    .map(drop)
            }
        }
    }

    fn read(&self, path: &str) -> Result<Option<String>, XenError> {
        self.with_store(|store| store.read(path))
    }

    fn write(&self, path: &str, value: &str) -> Result<(), XenError> {
        self.with_store(|store| store.write(path, value))
    }

    fn remove(&self, path: &str) -> Result<(), XenError> {
        self.with_store(|store| store.remove(path))
    }

    fn directory(&self, path: &str) -> Result<Vec<String>, XenError> {
        self.with_store(|store| store.directory(path)).map(Option::unwrap_or_default)
    }

    fn watcher(&self) -> io::Result<Box<dyn Watch>> {
        Ok(Box::new(Xenstore::connect()?))
    }

    fn channel(&self, domid: u32, ring_ref: u32, port: u32) -> io::Result<Box<dyn Channel>> {
        let peer = u16::try_from(domid).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "domid over 65535"))?;
        Ok(Box::new(Vchan::connect(peer, Offer { ring_ref, port })?))
    }

    fn console_ring(&self, domid: u32, frame: u64) -> io::Result<Box<dyn ConsoleRing>> {
        Ok(Box::new(PrivcmdRing::map(domid, frame)?))
    }
}

impl Channel for Vchan {
    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor lives as long as the vchan the result borrows.
        unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }

    fn handle_event(&self) -> io::Result<()> {
        Vchan::handle_event(self).map(drop)
    }

    fn try_read(&self, out: &mut [u8]) -> io::Result<usize> {
        Vchan::try_read(self, out)
    }

    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        Vchan::try_write(self, data)
    }
}

impl Watch for Xenstore {
    fn fd(&self) -> BorrowedFd<'_> {
        Xenstore::fd(self)
    }

    fn watch(&mut self, path: &str, token: &str) -> io::Result<()> {
        Xenstore::watch(self, path, token)
    }

    fn next_event(&mut self) -> io::Result<String> {
        Xenstore::next_event(self)
    }

    fn has_queued_events(&self) -> bool {
        Xenstore::has_queued_events(self)
    }

    fn read(&mut self, path: &str) -> io::Result<Option<String>> {
        Xenstore::read(self, path)
    }

    fn write(&mut self, path: &str, value: &str) -> io::Result<()> {
        Xenstore::write(self, path, value)
    }
}

/// Reads one domain's row of `xl list`: `Name ID Mem VCPUs State Time(s)`, the state being
/// six flag columns `rbpsRd`, R the shutdown reason's letter (`-rscwS`: poweroff, reboot,
/// suspend, crash, watchdog, soft reset).
fn parse_list(output: &str, domid: u32) -> Option<DomainState> {
    // Names may hold spaces: the columns after the name are counted from the right.
    let row = output.lines().skip(1).find(|l| l.split_whitespace().rev().nth(4) == Some(domid.to_string().as_str()))?;
    let fields: Vec<&str> = row.split_whitespace().rev().collect();
    let flags = fields.get(1)?.as_bytes();
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
    Some(DomainState { paused: flags[2] == b'p', ended, dying: flags[5] == b'd' })
}

/// The `Mem` column (MiB) of one domain's row of `xl list`.
fn parse_list_memory(output: &str, domid: u32) -> Option<u64> {
    let row = output.lines().skip(1).find(|l| l.split_whitespace().rev().nth(4) == Some(domid.to_string().as_str()))?;
    row.split_whitespace().rev().nth(3)?.parse().ok()
}

struct VcpuRow {
    online: bool,
    time_ns: u64,
}

/// One domain's rows of `xl vcpu-list`: `Name ID VCPU CPU State Time(s) Affinity...`, where an
/// offline vcpu has `-` for its CPU. runx's domain names hold no spaces.
fn parse_vcpu_list(output: &str, domid: u32) -> Option<Vec<VcpuRow>> {
    let id = domid.to_string();
    let mut rows = Vec::new();
    for line in output.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&id.as_str()) {
            continue;
        }
        let seconds: f64 = fields.get(5)?.parse().ok()?;
        rows.push(VcpuRow { online: *fields.get(3)? != "-", time_ns: (seconds * 1e9).round() as u64 });
    }
    (!rows.is_empty()).then_some(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xl_list_rows() {
        let out = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
                   web                                          7    64     1     --p---       0.0\n";
        let s = parse_list(out, 7).unwrap();
        assert_eq!(s, DomainState { paused: true, ended: None, dying: false });
        for (flags, reason) in
            [("---s--", Shutdown::Poweroff), ("---sc-", Shutdown::Crash), ("---sw-", Shutdown::Watchdog)]
        {
            assert_eq!(parse_list(&out.replace("--p---", flags), 7).unwrap().ended, Some(reason));
        }
        assert!(parse_list(out, 8).is_none());
        assert!(parse_list("Name ID\nweb 7 64 1 x 0.0\n", 7).is_none());
    }

    #[test]
    fn reads_memory_and_vcpus() {
        let list = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
                    web                                          7   248     2     -b----       3.4\n";
        assert_eq!(parse_list_memory(list, 7), Some(248));
        assert_eq!(parse_list_memory(list, 8), None);
        let vcpus = "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n\
                     runx-web                             7     0    1   -b-       2.5  all / all\n\
                     runx-web                             7     1    -   --p       0.9  all / all\n\
                     other                               17     0    0   r--      10.0  all / all\n";
        let rows = parse_vcpu_list(vcpus, 7).unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.online, r.time_ns)).collect::<Vec<_>>(),
            [(true, 2_500_000_000), (false, 900_000_000)]
        );
        assert!(parse_vcpu_list(vcpus, 9).is_none());
        assert!(parse_vcpu_list(&vcpus.replace("2.5", "x"), 7).is_none());
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
