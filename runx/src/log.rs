//! runc's log: `--log FILE` with `--log-format text|json`. containerd reads the last error line
//! of the JSON form and shows its `msg` to the user.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub struct Log {
    file: Option<File>,
    format: Format,
    debug: bool,
}

impl Log {
    /// Without a file, lines go to stderr.
    pub fn open(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => Some(File::options().create(true).append(true).open(path)?),
            None => None,
        };
        Ok(Self { file, format, debug })
    }

    pub fn error(&mut self, msg: &str) {
        self.line("error", msg);
    }

    pub fn warn(&mut self, msg: &str) {
        self.line("warning", msg);
    }

    pub fn debug(&mut self, msg: &str) {
        if self.debug {
            self.line("debug", msg);
        }
    }

    fn line(&mut self, level: &str, msg: &str) {
        let line = format_line(self.format, level, msg, &now_rfc3339());
        let _ = match &mut self.file {
            Some(file) => file.write_all(line.as_bytes()),
            None => std::io::stderr().write_all(line.as_bytes()),
        };
    }
}

fn format_line(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let value = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{value}\n")
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={}\n", serde_json::Value::from(msg)),
    }
}

/// The current UTC time as RFC 3339 (`2026-11-28T09:30:00Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_like_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_858_245), "2026-11-28T09:30:45Z");
    }

    #[test]
    fn lines_are_shaped_like_runcs() {
        let json = format_line(Format::Json, "error", "container \"x\" does not exist", "T");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["level"], "error");
        assert_eq!(value["msg"], "container \"x\" does not exist");
        assert_eq!(value["time"], "T");
        assert_eq!(format_line(Format::Text, "error", "a \"b\"", "T"), "time=\"T\" level=error msg=\"a \\\"b\\\"\"\n");
    }
}
