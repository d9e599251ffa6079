//! xl.cfg fragments an admin writes (runx's named profiles): the xl.cfg(5) syntax, read into
//! the typed settings runx knows, so that nothing reaches `xl create` as raw text.

use super::{keys, Devices, DomainConfig, Placement};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {why}")]
pub struct FragmentError {
    pub line: usize,
    pub why: String,
}

/// The settings of one fragment: each one replaces (scalars) or extends (lists) a domain's.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
    pub placement: Placement,
    pub devices: Devices,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Text(String),
    Number(u64),
    List(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Text(String),
    Number(u64),
    Equals,
    Open,
    Close,
    Comma,
    End,
}

/// Splits the text into tokens, each with its line; newlines and `;` end a setting.
fn tokens(text: &str) -> Result<Vec<(usize, Token)>, FragmentError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        let err = |why: String| FragmentError { line, why };
        match c {
            '\n' | ';' => {
                out.push((line, Token::End));
                if c == '\n' {
                    line += 1;
                }
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            c if c.is_whitespace() => {}
            '=' => out.push((line, Token::Equals)),
            '[' => out.push((line, Token::Open)),
            ']' => out.push((line, Token::Close)),
            ',' => out.push((line, Token::Comma)),
            '"' | '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') => text.push(chars.next().ok_or_else(|| err("unfinished string".into()))?),
                        Some('\n') | None => return Err(err("unfinished string".into())),
                        Some(other) => text.push(other),
                    }
                }
                out.push((line, Token::Text(text)));
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek().filter(|n| n.is_ascii_alphanumeric() || **n == '_') {
                    word.push(next);
                    chars.next();
                }
                let number = match word.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok(),
                    None if c.is_ascii_digit() => word.parse().ok(),
                    None => None,
                };
                match number {
                    Some(n) => out.push((line, Token::Number(n))),
                    None if c.is_ascii_digit() => return Err(err(format!("{word:?} is not a number"))),
                    None => out.push((line, Token::Word(word))),
                }
            }
            other => return Err(err(format!("unexpected {other:?}"))),
        }
    }
    out.push((line, Token::End));
    Ok(out)
}

/// Reads `key = value` settings.
fn settings(text: &str) -> Result<Vec<(usize, String, Value)>, FragmentError> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let mut out = Vec::new();
    let next_line = |at: usize| tokens.get(at).map_or(0, |(l, _)| *l);
    while at < tokens.len() {
        let line = next_line(at);
        let err = |why: &str| FragmentError { line, why: why.to_owned() };
        match &tokens[at].1 {
            Token::End => at += 1,
            Token::Word(key) => {
                if tokens.get(at + 1).map(|t| &t.1) != Some(&Token::Equals) {
                    return Err(err("expected `key = value`"));
                }
                at += 2;
                let value = match tokens.get(at).map(|t| &t.1) {
                    Some(Token::Text(t)) => Value::Text(t.clone()),
                    Some(Token::Number(n)) => Value::Number(*n),
                    Some(Token::Open) => {
                        let mut items = Vec::new();
                        loop {
                            at += 1;
                            match tokens.get(at).map(|t| &t.1) {
                                Some(Token::End) | Some(Token::Comma) => {}
                                Some(Token::Close) => break,
                                Some(Token::Text(t)) => items.push(Value::Text(t.clone())),
                                Some(Token::Number(n)) => items.push(Value::Number(*n)),
                                _ => return Err(err("a list holds strings or numbers and ends with ]")),
                            }
                        }
                        Value::List(items)
                    }
                    _ => return Err(err("expected a string, a number or a [list] after =")),
                };
                at += 1;
                if !matches!(tokens.get(at).map(|t| &t.1), Some(Token::End)) {
                    return Err(err("one setting per line"));
                }
                out.push((line, key.clone(), value));
            }
            _ => return Err(err("expected `key = value`")),
        }
    }
    Ok(out)
}

impl Fragment {
    pub fn parse(text: &str) -> Result<Self, FragmentError> {
        let mut fragment = Fragment::default();
        for (line, key, value) in settings(text)? {
            match keys::parse(&key, &value, &mut fragment) {
                Some(parsed) => parsed.map_err(|why| FragmentError { line, why: format!("{key}: {why}") })?,
                None => {
                    let names: Vec<&str> = keys::profile_keys().map(|k| k.name).collect();
                    return Err(FragmentError {
                        line,
                        why: format!(
                            "{key} is not a setting runx takes from a profile: use some of {}",
                            names.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(fragment)
    }
}

impl DomainConfig {
    /// Applies a fragment: its scalars replace the domain's, its lists add to them.
    pub fn apply(&mut self, fragment: &Fragment) {
        keys::apply(fragment, self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GuestType;

    const TTC: &str = r#"
# ZCU102 TTC0 for a baremetal timer app, on a pinned pcpu in the RT pool
memory = 32
vcpus = 1
cpus = "3"
pool = "rt"
iomem = [ "0xff110,1" ]
irqs = [ 68, 69,
         70 ]   # one per counter
dtdev = [ "/axi/timer@ff110000" ]
device_tree = "/etc/runx/profiles/ttc.dtb"
"#;

    #[test]
    fn reads_an_admin_profile() {
        let f = Fragment::parse(TTC).unwrap();
        assert_eq!(f.memory_mib, Some(32));
        assert_eq!(f.placement.cpus.as_deref(), Some("3"));
        assert_eq!(f.placement.cpupool.as_deref(), Some("rt"));
        assert_eq!(f.devices.iomem, ["0xff110,1"]);
        assert_eq!(f.devices.irqs, [68, 69, 70]);
        assert_eq!(f.devices.dtdev, ["/axi/timer@ff110000"]);
        assert_eq!(f.devices.device_tree.as_deref(), Some("/etc/runx/profiles/ttc.dtb"));
    }

    #[test]
    fn a_profile_lands_in_the_rendered_config() {
        let mut cfg = DomainConfig::new("ttc", GuestType::Pvh, "/k", 64, 2);
        cfg.devices.irqs = vec![10];
        cfg.apply(&Fragment::parse(TTC).unwrap());
        let text = cfg.render().unwrap();
        for line in ["memory = 32\n", "vcpus = 1\n", "cpus = \"3\"\n", "pool = \"rt\"\n", "irqs = [ 10, 68, 69, 70 ]\n"]
        {
            assert!(text.contains(line), "{line:?} not in {text}");
        }
    }

    #[test]
    fn refuses_what_runx_does_not_take() {
        let err = |text: &str| Fragment::parse(text).unwrap_err();
        assert_eq!(err("memory = 32\nextra = \"init=/bin/sh\"\n").line, 2);
        assert!(err("kernel = \"/etc/shadow\"").why.contains("not a setting runx takes"));
        assert!(err("memory = \"lots\"").why.contains("expected a number"));
        assert!(err("memory = 0").why.contains("at least 1"));
        assert!(err("cpus = \"3\" pool = \"rt\"").why.contains("one setting per line"));
        assert!(err("iomem = [ \"0xff110,1\"").why.contains("ends with ]"));
        assert!(err("pool = \"rt").why.contains("unfinished string"));
        assert!(err("vuart = \"pl011\"").why.contains("sbsa_uart"));
        assert!(err("irqs = [ 99999999999 ]").why.contains("too large"));
    }
}
