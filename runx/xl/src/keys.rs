//! Every xl.cfg key runx writes, described once, in the order `DomainConfig::render` writes them
//! (tests and golden files hold that order byte for byte). Each entry says how its value is
//! shaped, how an admin's fragment sets it, how it renders and how a fragment's value merges into
//! a domain's; parsing, rendering, merging, the profile allow-list and the documented lists of
//! profile keys all read it, so a new key is one entry here plus its tests.

use std::fmt::{Display, Write};

use super::fragment::{Fragment, Value};
use super::{quote, Action, DomainConfig, XlError};

/// One xl.cfg key.
pub struct XlKey {
    pub name: &'static str,
    /// What the key means, as the profile docs say it.
    pub doc: &'static str,
    access: Access,
}

/// What a key's value looks like in xl.cfg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A quoted string.
    Text,
    /// A quoted list of strings.
    Texts,
    /// A number of at least 1 that every domain has.
    Count,
    /// A number.
    Number,
    /// A list of numbers.
    Numbers,
    /// The one string that turns a device on.
    Flag(&'static str),
}

/// How a fragment's value meets the domain's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    Replace,
    Extend,
    Or,
}

impl KeyKind {
    pub fn merge(self) -> Merge {
        match self {
            KeyKind::Text | KeyKind::Count | KeyKind::Number => Merge::Replace,
            KeyKind::Texts | KeyKind::Numbers => Merge::Extend,
            KeyKind::Flag(_) => Merge::Or,
        }
    }
}

/// Where a key's value lives.
enum Access {
    /// Set by the runtime alone (identity, boot files, actions, disks): no profile reaches it.
    Runtime(fn(&DomainConfig) -> Option<&str>),
    RuntimeList(fn(&DomainConfig) -> &[String]),
    /// Set by the runtime and by an admin's profile.
    Profile(&'static dyn Setting),
}

impl XlKey {
    pub fn kind(&self) -> KeyKind {
        match self.access {
            Access::Runtime(_) => KeyKind::Text,
            Access::RuntimeList(_) => KeyKind::Texts,
            Access::Profile(setting) => setting.kind(),
        }
    }

    /// Whether an admin's profile may set it.
    pub fn profile(&self) -> bool {
        matches!(self.access, Access::Profile(_))
    }

    /// Writes the domain's value as an xl.cfg line; an unset value writes nothing.
    fn render(&self, domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
        match self.access {
            Access::Runtime(get) => get(domain).map_or(Ok(()), |value| text(self.name, value, out)),
            Access::RuntimeList(get) => texts(self.name, get(domain), out),
            Access::Profile(setting) => setting.render(self.name, domain, out),
        }
    }
}

/// The keys an admin's profile may set.
pub fn profile_keys() -> impl Iterator<Item = &'static XlKey> {
    KEYS.iter().filter(|key| key.profile())
}

/// Reads one setting of a fragment; `None` when `name` is not a key a profile may set.
pub(super) fn parse(name: &str, value: &Value, fragment: &mut Fragment) -> Option<Result<(), String>> {
    KEYS.iter().find(|key| key.name == name).and_then(|key| match key.access {
        Access::Profile(setting) => Some(setting.parse(value, fragment)),
        Access::Runtime(_) | Access::RuntimeList(_) => None,
    })
}

/// Merges each of a fragment's settings into the domain's.
pub(super) fn apply(fragment: &Fragment, domain: &mut DomainConfig) {
    for key in KEYS {
        if let Access::Profile(setting) = key.access {
            setting.apply(fragment, domain);
        }
    }
}

/// Writes every set key of the domain, one `key = value` line each.
pub(super) fn render(domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
    KEYS.iter().try_for_each(|key| key.render(domain, out))
}

/// A profile key's behaviour, given by the type that holds its field.
trait Setting {
    fn kind(&self) -> KeyKind;
    fn parse(&self, value: &Value, fragment: &mut Fragment) -> Result<(), String>;
    fn apply(&self, fragment: &Fragment, domain: &mut DomainConfig);
    fn render(&self, key: &'static str, domain: &DomainConfig, out: &mut String) -> Result<(), XlError>;
}

/// A field in a fragment (`F`) and in a domain (`D`): both carry profile keys under the same path.
struct Slot<F, D = F> {
    fragment: fn(&Fragment) -> &F,
    fragment_mut: fn(&mut Fragment) -> &mut F,
    domain: fn(&DomainConfig) -> &D,
    domain_mut: fn(&mut DomainConfig) -> &mut D,
}

/// The four accessors of one field path, so that the path is written once.
macro_rules! slot {
    ($($field:ident).+) => {
        Slot {
            fragment: |f| &f.$($field).+,
            fragment_mut: |f| &mut f.$($field).+,
            domain: |d| &d.$($field).+,
            domain_mut: |d| &mut d.$($field).+,
        }
    };
}

/// [`KeyKind::Count`]: a fragment's replaces the domain's, which is always set.
struct Count<T>(Slot<Option<T>, T>);
/// [`KeyKind::Number`].
struct Number(Slot<Option<u32>>);
/// [`KeyKind::Text`].
struct Text(Slot<Option<String>>);
/// [`KeyKind::Texts`].
struct Texts(Slot<Vec<String>>);
/// [`KeyKind::Numbers`].
struct Numbers(Slot<Vec<u32>>);
/// [`KeyKind::Flag`]: `what` names the device in the refusal of any other value.
struct Flag {
    what: &'static str,
    value: &'static str,
    slot: Slot<bool>,
}

impl<T: Copy + From<u32> + Display> Setting for Count<T> {
    fn kind(&self) -> KeyKind {
        KeyKind::Count
    }
    fn parse(&self, value: &Value, fragment: &mut Fragment) -> Result<(), String> {
        let n = number(value)?;
        if n == 0 {
            return Err("must be at least 1".into());
        }
        *(self.0.fragment_mut)(fragment) = Some(n.into());
        Ok(())
    }
    fn apply(&self, fragment: &Fragment, domain: &mut DomainConfig) {
        if let Some(value) = *(self.0.fragment)(fragment) {
            *(self.0.domain_mut)(domain) = value;
        }
    }
    fn render(&self, key: &'static str, domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
        let _ = writeln!(out, "{key} = {}", (self.0.domain)(domain));
        Ok(())
    }
}

impl Setting for Number {
    fn kind(&self) -> KeyKind {
        KeyKind::Number
    }
    fn parse(&self, value: &Value, fragment: &mut Fragment) -> Result<(), String> {
        *(self.0.fragment_mut)(fragment) = Some(number(value)?);
        Ok(())
    }
    fn apply(&self, fragment: &Fragment, domain: &mut DomainConfig) {
        replace((self.0.domain_mut)(domain), (self.0.fragment)(fragment));
    }
    fn render(&self, key: &'static str, domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
        if let Some(value) = (self.0.domain)(domain) {
            let _ = writeln!(out, "{key} = {value}");
        }
        Ok(())
    }
}

impl Setting for Text {
    fn kind(&self) -> KeyKind {
        KeyKind::Text
    }
    fn parse(&self, value: &Value, fragment: &mut Fragment) -> Result<(), String> {
        *(self.0.fragment_mut)(fragment) = Some(string(value)?);
        Ok(())
    }
    fn apply(&self, fragment: &Fragment, domain: &mut DomainConfig) {
        replace((self.0.domain_mut)(domain), (self.0.fragment)(fragment));
    }
    fn render(&self, key: &'static str, domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
        (self.0.domain)(domain).as_deref().map_or(Ok(()), |value| text(key, value, out))
    }
}

impl Setting for Texts {
    fn kind(&self) -> KeyKind {
        KeyKind::Texts
    }
    fn parse(&self, value: &Value, fragment: &mut Fragment) -> Result<(), String> {
        *(self.0.fragment_mut)(fragment) = list(value)?.iter().map(string).collect::<Result<_, _>>()?;
        Ok(())
    }
    fn apply(&self, fragment: &Fragment, domain: &mut DomainConfig) {
        (self.0.domain_mut)(domain).extend((self.0.fragment)(fragment).iter().cloned());
    }
    fn render(&self, key: &'static str, domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
        texts(key, (self.0.domain)(domain), out)
    }
}

impl Setting for Numbers {
    fn kind(&self) -> KeyKind {
        KeyKind::Numbers
    }
    fn parse(&self, value: &Value, fragment: &mut Fragment) -> Result<(), String> {
        *(self.0.fragment_mut)(fragment) = list(value)?.iter().map(number).collect::<Result<_, _>>()?;
        Ok(())
    }
    fn apply(&self, fragment: &Fragment, domain: &mut DomainConfig) {
        (self.0.domain_mut)(domain).extend((self.0.fragment)(fragment).iter().copied());
    }
    fn render(&self, key: &'static str, domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
        let items = (self.0.domain)(domain);
        if !items.is_empty() {
            let items: Vec<String> = items.iter().map(u32::to_string).collect();
            let _ = writeln!(out, "{key} = [ {} ]", items.join(", "));
        }
        Ok(())
    }
}

impl Setting for Flag {
    fn kind(&self) -> KeyKind {
        KeyKind::Flag(self.value)
    }
    fn parse(&self, value: &Value, fragment: &mut Fragment) -> Result<(), String> {
        if string(value)? != self.value {
            return Err(format!("the only {} is {:?}", self.what, self.value));
        }
        *(self.slot.fragment_mut)(fragment) = true;
        Ok(())
    }
    fn apply(&self, fragment: &Fragment, domain: &mut DomainConfig) {
        *(self.slot.domain_mut)(domain) |= *(self.slot.fragment)(fragment);
    }
    fn render(&self, key: &'static str, domain: &DomainConfig, out: &mut String) -> Result<(), XlError> {
        if *(self.slot.domain)(domain) {
            text(key, self.value, out)?;
        }
        Ok(())
    }
}

fn replace<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        target.clone_from(value);
    }
}

fn number(value: &Value) -> Result<u32, String> {
    match value {
        Value::Number(n) => u32::try_from(*n).map_err(|_| format!("{n} is too large")),
        _ => Err("expected a number".into()),
    }
}

fn string(value: &Value) -> Result<String, String> {
    match value {
        Value::Text(t) if !t.chars().any(char::is_control) => Ok(t.clone()),
        Value::Text(_) => Err("control characters cannot appear in xl.cfg".into()),
        _ => Err("expected a \"string\"".into()),
    }
}

fn list(value: &Value) -> Result<&[Value], String> {
    match value {
        Value::List(items) => Ok(items),
        _ => Err("expected a [list]".into()),
    }
}

fn text(key: &'static str, value: &str, out: &mut String) -> Result<(), XlError> {
    let _ = writeln!(out, "{key} = {}", quote(key, value)?);
    Ok(())
}

fn texts(key: &'static str, items: &[String], out: &mut String) -> Result<(), XlError> {
    if !items.is_empty() {
        let quoted: Vec<String> = items.iter().map(|i| quote(key, i)).collect::<Result<_, _>>()?;
        let _ = writeln!(out, "{key} = [ {} ]", quoted.join(", "));
    }
    Ok(())
}

/// The runtime-only keys sit here too, because render interleaves them with profile keys.
pub const KEYS: &[XlKey] = &[
    XlKey { name: "name", doc: "the domain's name", access: Access::Runtime(|d| Some(&d.name)) },
    XlKey { name: "uuid", doc: "the domain's identity", access: Access::Runtime(|d| d.uuid.as_deref()) },
    XlKey { name: "type", doc: "the guest type", access: Access::Runtime(|d| Some(d.guest_type.as_str())) },
    XlKey { name: "kernel", doc: "the guest kernel", access: Access::Runtime(|d| Some(&d.kernel)) },
    XlKey { name: "ramdisk", doc: "the guest's initramfs", access: Access::Runtime(|d| d.ramdisk.as_deref()) },
    XlKey { name: "extra", doc: "the kernel command line", access: Access::Runtime(|d| d.cmdline.as_deref()) },
    XlKey {
        name: "acpi",
        doc: "ACPI tables for the guest",
        access: Access::Runtime(|d| d.acpi.map(|on| if on { "1" } else { "0" })),
    },
    XlKey {
        name: "cpus",
        doc: "vcpu pinning (hard affinity), e.g. `\"3\"` or `\"2-3\"`",
        access: Access::Profile(&Text(slot!(placement.cpus))),
    },
    XlKey {
        name: "pool",
        doc: "the cpupool, which also chooses the **scheduler** (create it first, e.g. with `sched=\"null\"` or `\"rtds\"`)",
        access: Access::Profile(&Text(slot!(placement.cpupool))),
    },
    XlKey {
        name: "device_tree",
        doc: "the guest's partial device tree (a host path)",
        access: Access::Profile(&Text(slot!(devices.device_tree))),
    },
    XlKey {
        name: "vuart",
        doc: "a virtual SBSA UART (arm64)",
        access: Access::Profile(&Flag { what: "virtual UART", value: "sbsa_uart", slot: slot!(devices.vuart) }),
    },
    XlKey {
        name: "on_poweroff",
        doc: "what Xen does when the guest powers off",
        access: Access::Runtime(|d| d.on_poweroff.map(Action::as_str)),
    },
    XlKey {
        name: "on_reboot",
        doc: "what Xen does when the guest reboots",
        access: Access::Runtime(|d| d.on_reboot.map(Action::as_str)),
    },
    XlKey {
        name: "on_crash",
        doc: "what Xen does when the guest crashes",
        access: Access::Runtime(|d| d.on_crash.map(Action::as_str)),
    },
    XlKey {
        name: "on_watchdog",
        doc: "what Xen does when the guest's watchdog expires",
        access: Access::Runtime(|d| d.on_watchdog.map(Action::as_str)),
    },
    XlKey { name: "memory", doc: "guest memory in MiB", access: Access::Profile(&Count(slot!(memory_mib))) },
    XlKey { name: "vcpus", doc: "the guest's vcpu count", access: Access::Profile(&Count(slot!(vcpus))) },
    XlKey {
        name: "cap",
        doc: "credit scheduler cap (percent of one CPU)",
        access: Access::Profile(&Number(slot!(placement.cap))),
    },
    XlKey {
        name: "cpu_weight",
        doc: "credit scheduler weight relative to other domains",
        access: Access::Profile(&Number(slot!(placement.weight))),
    },
    XlKey {
        name: "iomem",
        doc: "`\"MFN,NR_PAGES[@GFN]\"` entries (hexadecimal pages)",
        access: Access::Profile(&Texts(slot!(devices.iomem))),
    },
    XlKey {
        name: "dtdev",
        doc: "host device-tree paths of devices behind an IOMMU",
        access: Access::Profile(&Texts(slot!(devices.dtdev))),
    },
    XlKey { name: "pci", doc: "PCI devices (BDF)", access: Access::Profile(&Texts(slot!(devices.pci))) },
    XlKey { name: "disk", doc: "the guest's disks", access: Access::RuntimeList(|d| &d.disks) },
    XlKey { name: "vif", doc: "the guest's network interfaces", access: Access::RuntimeList(|d| &d.vifs) },
    XlKey { name: "irqs", doc: "host interrupts routed to the guest, e.g. `[ 68, 69 ]`", access: Access::Profile(&Numbers(slot!(devices.irqs))) },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Devices, GuestType, Placement};

    #[test]
    fn set_fields_replace_and_lists_add() {
        let mut domain = DomainConfig::new("d", GuestType::Pvh, "k", 64, 1);
        domain.placement = Placement { cpus: Some("0".into()), cap: Some(50), ..Placement::default() };
        domain.devices = Devices { irqs: vec![10], device_tree: Some("/a.dtb".into()), ..Devices::default() };
        let mut fragment = Fragment { memory_mib: Some(32), ..Fragment::default() };
        fragment.placement = Placement { cpus: Some("3".into()), weight: Some(512), ..Placement::default() };
        fragment.devices = Devices { irqs: vec![68], iomem: vec!["0xff110,1".into()], ..Devices::default() };
        domain.apply(&fragment);
        assert_eq!((domain.memory_mib, domain.vcpus), (32, 1));
        assert_eq!(
            domain.placement,
            Placement { cpus: Some("3".into()), cpupool: None, cap: Some(50), weight: Some(512) }
        );
        let devices = &domain.devices;
        assert_eq!((devices.irqs.as_slice(), devices.iomem.as_slice()), (&[10, 68][..], &["0xff110,1".to_owned()][..]));
        assert_eq!(devices.device_tree.as_deref(), Some("/a.dtb"), "an unset device tree keeps the domain's");
        let fragment = Fragment {
            devices: Devices { device_tree: Some("/b.dtb".into()), vuart: true, ..Devices::default() },
            ..Fragment::default()
        };
        domain.apply(&fragment);
        domain.apply(&Fragment::default());
        assert_eq!((domain.devices.device_tree.as_deref(), domain.devices.vuart), (Some("/b.dtb"), true));
    }

    #[test]
    fn each_profile_key_parses_and_renders_under_its_name() {
        for key in profile_keys() {
            let value = match key.kind() {
                KeyKind::Text => "\"v\"".to_owned(),
                KeyKind::Texts => "[ \"v\" ]".to_owned(),
                KeyKind::Count | KeyKind::Number => "7".to_owned(),
                KeyKind::Numbers => "[ 7 ]".to_owned(),
                KeyKind::Flag(value) => format!("\"{value}\""),
            };
            let mut domain = DomainConfig::new("d", GuestType::Pvh, "k", 64, 1);
            domain.apply(&Fragment::parse(&format!("{} = {value}", key.name)).unwrap());
            let text = domain.render().unwrap();
            assert!(text.contains(&format!("\n{} = {value}\n", key.name)), "{} = {value} not in {text}", key.name);
        }
    }

    /// The profile keys as the docs table lists them: a row each, with its shape and merge rule.
    fn docs_table() -> String {
        let mut table = String::from("| key | value | merge | meaning |\n| --- | --- | --- | --- |\n");
        for key in profile_keys() {
            let shape = match key.kind() {
                KeyKind::Text => "string".to_owned(),
                KeyKind::Texts => "[ strings ]".to_owned(),
                KeyKind::Count => "number, at least 1".to_owned(),
                KeyKind::Number => "number".to_owned(),
                KeyKind::Numbers => "[ numbers ]".to_owned(),
                KeyKind::Flag(value) => format!("`\"{value}\"`"),
            };
            let merge = match key.kind().merge() {
                Merge::Replace => "replaces",
                Merge::Extend => "adds",
                Merge::Or => "turns on",
            };
            let _ = writeln!(table, "| `{}` | {shape} | {merge} | {} |", key.name, key.doc);
        }
        table
    }

    #[test]
    fn the_docs_and_the_shipped_config_list_the_profile_keys() {
        let docs = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/kernel-containers.md"));
        let table = docs_table();
        assert!(docs.contains(&table), "docs/kernel-containers.md must hold the profile keys' table:\n{table}");

        let config = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../meta-runx/recipes-containers/runx/files/config.toml"
        ));
        let names: Vec<&str> = profile_keys().map(|key| key.name).collect();
        let list = format!("# ({})\n", names.join(", "));
        assert!(config.contains(&list), "meta-runx's config.toml must list the profile keys as {list:?}");
    }
}
