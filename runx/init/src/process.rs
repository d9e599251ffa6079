//! Starting the container's process: a child that enters the container's
//! root, takes the spec's identity and limits, and execs the program, or
//! reports why it could not, with runc's exit codes (127 not found, 126 not
//! executable).

use std::convert::Infallible;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{self, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{
    chdir, chroot, dup2, execve, fork, pipe2, setgid, setgroups, setsid, setuid, ForkResult, Gid, Pid, Uid,
};
use runx_launch::Process;

use crate::{capabilities, os_error, Failure};

/// What PATH is when the spec's environment has none (runc's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds the program like runc (Go's exec.LookPath with the container's PATH).
fn find_program(arg0: &str, env: &[String]) -> Result<PathBuf, Failure> {
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| Failure::new(127, format!("exec: {arg0:?}: executable file not found in $PATH")))
}

fn c_string(what: &str, value: &str) -> Result<CString, Failure> {
    CString::new(value).map_err(|_| Failure::new(127, format!("{what} {value:?} contains a NUL byte")))
}

/// What the process's fds 0, 1 and 2 are.
pub enum Stdio<'a> {
    /// runx-init's own: the guest console.
    Console,
    /// A pty's slave, which also becomes the process's controlling terminal.
    Terminal(&'a OwnedFd),
    /// Pipe ends (an exec'd process's): stdin, stdout, stderr.
    Pipes([&'a OwnedFd; 3]),
}

/// Everything the child does between fork and exec.
fn enter_and_exec(process: &Process, root: &Path, stdio: &Stdio<'_>) -> Result<Infallible, Failure> {
    let sys = |what: &str, e: Errno| Failure::sys(what, e);
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(|e| sys("unblock signals", e))?;
    // An ignored signal stays ignored across exec: Rust's runtime ignores SIGPIPE in runx-init,
    // and the process must start as runc's would, with every disposition at its default.
    for signal in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: SIG_DFL installs no handler; the child is single-threaded.
        unsafe { signal::signal(signal, SigHandler::SigDfl) }.map_err(|e| sys("reset signal dispositions", e))?;
    }
    let ends = match stdio {
        Stdio::Console => None,
        Stdio::Terminal(pty) => Some([*pty; 3]),
        Stdio::Pipes(pipes) => Some(*pipes),
    };
    for (fd, end) in ends.iter().flatten().enumerate() {
        dup2(end.as_raw_fd(), fd as i32).map_err(|e| sys("give the process its stdio", e))?;
    }
    setsid().map_err(|e| sys("setsid", e))?;
    if matches!(stdio, Stdio::Terminal(_)) {
        // The pty becomes the process's controlling terminal, as a shell's job control needs.
        // SAFETY: TIOCSCTTY takes an int argument and touches no memory of ours.
        if unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) } != 0 {
            return Err(sys("TIOCSCTTY on the pty", Errno::last()));
        }
    }
    chroot(root).map_err(|e| sys("chroot", e))?;
    chdir("/").map_err(|e| sys("chdir /", e))?;
    for limit in &process.rlimits {
        let kind = resource(&limit.kind).ok_or_else(|| Failure::setup(format!("unknown rlimit {}", limit.kind)))?;
        setrlimit(kind, limit.soft, limit.hard).map_err(|e| sys(&format!("setrlimit {}", limit.kind), e))?;
    }
    if let Some(caps) = &process.capabilities {
        capabilities::limit_bounding(caps)?;
    }
    let user = &process.user;
    let groups: Vec<Gid> = user.additional_gids.iter().map(|&g| Gid::from_raw(g)).collect();
    setgroups(&groups).map_err(|e| sys("setgroups", e))?;
    setgid(Gid::from_raw(user.gid)).map_err(|e| sys(&format!("setgid {}", user.gid), e))?;
    setuid(Uid::from_raw(user.uid)).map_err(|e| sys(&format!("setuid {}", user.uid), e))?;
    if let Some(caps) = &process.capabilities {
        capabilities::apply(caps)?;
    }
    umask(Mode::from_bits_truncate(user.umask.unwrap_or(0o022)));
    chdir(Path::new(&process.cwd)).map_err(|e| {
        Failure::new(127, format!("chdir to cwd ({:?}) set in config.json failed: {}", process.cwd, os_error(e)))
    })?;
    if process.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| sys("no_new_privs", e))?;
    }
    let arg0 = &process.args[0];
    let program = find_program(arg0, &process.env)?;
    let program_c = c_string("program", &program.to_string_lossy())?;
    let args: Vec<CString> = process.args.iter().map(|a| c_string("argument", a)).collect::<Result<_, _>>()?;
    let env: Vec<CString> = process.env.iter().map(|e| c_string("environment entry", e)).collect::<Result<_, _>>()?;
    let err = execve(&program_c, &args, &env).unwrap_err();
    let code = if err == Errno::ENOENT { 127 } else { 126 };
    Err(Failure::new(code, format!("exec: {arg0:?}: {}", os_error(err).to_ascii_lowercase())))
}

/// Forks the process; returns its pid and, when it could not be started, why (the child then
/// exits with the failure's code).
pub fn spawn(process: &Process, root: &Path, stdio: &Stdio<'_>) -> Result<(Pid, Option<Failure>), Failure> {
    let (report_read, report_write): (OwnedFd, OwnedFd) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| Failure::sys("pipe", e))?;
    // SAFETY: runx-init is single-threaded, so the child may allocate and run ordinary code.
    match unsafe { fork() }.map_err(|e| Failure::sys("fork", e))? {
        ForkResult::Child => {
            drop(report_read);
            let failure = match enter_and_exec(process, root, stdio) {
                Err(failure) => failure,
                Ok(never) => match never {},
            };
            let mut report = vec![failure.exit_code as u8];
            report.extend_from_slice(failure.message.as_bytes());
            let _ = nix::unistd::write(&report_write, &report);
            // SAFETY: _exit ends the child without running the parent's destructors twice.
            unsafe { nix::libc::_exit(failure.exit_code) }
        }
        ForkResult::Parent { child } => {
            drop(report_write);
            let mut report = Vec::new();
            // A successful exec closes the pipe with nothing written.
            let _ = fs::File::from(report_read).read_to_end(&mut report);
            let failure = report
                .split_first()
                .map(|(&code, message)| Failure::new(i32::from(code), String::from_utf8_lossy(message).into_owned()));
            Ok((child, failure))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_containers_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_owned()];
        assert!(find_program("sh", &env).unwrap().ends_with("sh"));
        assert_eq!(find_program("/x/y", &env).unwrap(), PathBuf::from("/x/y"));
        let missing = find_program("no-such-program", &env).unwrap_err();
        assert_eq!(missing.exit_code, 127);
        assert_eq!(missing.message, "exec: \"no-such-program\": executable file not found in $PATH");
    }

    #[test]
    fn knows_every_rlimit_the_spec_allows() {
        for name in runx_launch::RLIMITS {
            assert!(resource(name).is_some(), "{name}");
        }
    }
}
