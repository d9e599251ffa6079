//! runx-init: the guest's PID 1. It will run the container's process from
//! the launch spec; until then it only refuses to run anywhere but as PID 1,
//! so that it can never be started by mistake on the host.

use std::process::ExitCode;

fn refusal(pid: u32) -> Option<String> {
    (pid != 1).then(|| {
        format!("runx-init: running as pid {pid}: it is the PID 1 of a runx guest and is started by the guest kernel, not by hand")
    })
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("runx-init {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match refusal(std::process::id()) {
        Some(msg) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        None => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn refuses_to_run_outside_a_guest() {
        let msg = refusal(4242).expect("pid 4242 must be refused");
        assert!(msg.contains("pid 4242") && msg.contains("PID 1"), "{msg}");
        assert_eq!(refusal(1), None);
    }
}
