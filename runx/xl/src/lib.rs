//! xl domain configuration (xl.cfg(5)) as a typed model, rendered with
//! correct quoting. The runtime and `runx-tools xl-config` share it.

pub mod fragment;
pub mod keys;
mod settings;

pub use settings::{Devices, Placement};

/// The guest types xl can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestType {
    Pv,
    Pvh,
    Hvm,
}

impl GuestType {
    fn as_str(self) -> &'static str {
        match self {
            GuestType::Pv => "pv",
            GuestType::Pvh => "pvh",
            GuestType::Hvm => "hvm",
        }
    }
}

/// What Xen does when the guest powers off, reboots or crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Destroy,
    Restart,
    /// Keep the dead domain (state `s`) so that its xenstore data can still be read.
    Preserve,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Restart => "restart",
            Action::Preserve => "preserve",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XlError {
    #[error("xl setting {key}: {value:?} contains a control character (newline, tab, ...), which xl.cfg cannot hold")]
    ControlCharacter { key: &'static str, value: String },
    #[error("xl setting {key}: {why}")]
    Invalid { key: &'static str, why: String },
}

/// One guest's xl configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    pub name: String,
    /// The domain's identity (`uuid`): what the runtime recognises its own domains by.
    pub uuid: Option<String>,
    pub guest_type: GuestType,
    pub kernel: String,
    pub ramdisk: Option<String>,
    /// The kernel command line (`extra`).
    pub cmdline: Option<String>,
    /// ACPI tables for the guest (`acpi`); unset leaves xl's default.
    pub acpi: Option<bool>,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub placement: Placement,
    pub devices: Devices,
    pub disks: Vec<String>,
    /// Network interfaces (`vif`), e.g. `mac=00:16:3e:12:34:56,script=/bin/true`.
    pub vifs: Vec<String>,
    pub on_poweroff: Option<Action>,
    pub on_reboot: Option<Action>,
    pub on_crash: Option<Action>,
    /// What Xen does when the guest's watchdog expires (`on_watchdog`).
    pub on_watchdog: Option<Action>,
}

impl DomainConfig {
    /// A guest with only the essentials set; the rest empty.
    pub fn new(name: &str, guest_type: GuestType, kernel: &str, memory_mib: u64, vcpus: u32) -> Self {
        Self {
            name: name.to_owned(),
            uuid: None,
            guest_type,
            kernel: kernel.to_owned(),
            ramdisk: None,
            cmdline: None,
            acpi: None,
            memory_mib,
            vcpus,
            placement: Placement::default(),
            devices: Devices::default(),
            disks: Vec::new(),
            vifs: Vec::new(),
            on_poweroff: None,
            on_reboot: None,
            on_crash: None,
            on_watchdog: None,
        }
    }

    /// Renders xl.cfg text, one `key = value` per line.
    pub fn render(&self) -> Result<String, XlError> {
        if self.name.is_empty() {
            return Err(XlError::Invalid { key: "name", why: "a domain needs a name".into() });
        }
        if self.memory_mib == 0 || self.vcpus == 0 {
            return Err(XlError::Invalid { key: "memory", why: "memory and vcpus must be at least 1".into() });
        }
        let mut out = String::new();
        keys::render(self, &mut out)?;
        Ok(out)
    }
}

/// A double-quoted xl.cfg string: backslash and double quote escaped.
fn quote(key: &'static str, value: &str) -> Result<String, XlError> {
    if value.chars().any(char::is_control) {
        return Err(XlError::ControlCharacter { key, value: value.to_owned() });
    }
    Ok(format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_plain_guest() {
        let mut cfg = DomainConfig::new("web", GuestType::Pvh, "/boot/Image", 64, 1);
        cfg.cmdline = Some("console=hvc0 init=/sbin/runx-init".into());
        cfg.acpi = Some(false);
        cfg.on_poweroff = Some(Action::Preserve);
        assert_eq!(
            cfg.render().unwrap(),
            "name = \"web\"\ntype = \"pvh\"\nkernel = \"/boot/Image\"\nextra = \"console=hvc0 init=/sbin/runx-init\"\nacpi = \"0\"\non_poweroff = \"preserve\"\nmemory = 64\nvcpus = 1\n"
        );
    }

    #[test]
    fn renders_passthrough_and_pinning() {
        let mut cfg = DomainConfig::new("rt", GuestType::Pvh, "k", 16, 1);
        cfg.devices.iomem = vec!["0xff110,1".into()];
        cfg.devices.irqs = vec![68, 69, 70];
        cfg.devices.dtdev = vec!["/axi/timer@ff110000".into()];
        cfg.placement.cpus = Some("3".into());
        cfg.placement.cpupool = Some("rt".into());
        let text = cfg.render().unwrap();
        assert!(text.contains("iomem = [ \"0xff110,1\" ]\n"), "{text}");
        assert!(text.contains("irqs = [ 68, 69, 70 ]\n"), "{text}");
        assert!(text.contains("dtdev = [ \"/axi/timer@ff110000\" ]\n"), "{text}");
        assert!(text.contains("cpus = \"3\"\npool = \"rt\"\n"), "{text}");
    }

    #[test]
    fn renders_disks_and_network_interfaces() {
        let mut cfg = DomainConfig::new("net", GuestType::Pv, "k", 16, 1);
        cfg.disks = vec!["format=raw, vdev=xvda, access=ro, target=/run/runx/root.img".into()];
        cfg.vifs = vec!["mac=00:16:3e:0a:58:07,script=/bin/true".into()];
        let text = cfg.render().unwrap();
        assert!(
            text.contains("disk = [ \"format=raw, vdev=xvda, access=ro, target=/run/runx/root.img\" ]\n"),
            "{text}"
        );
        assert!(text.contains("vif = [ \"mac=00:16:3e:0a:58:07,script=/bin/true\" ]\n"), "{text}");
    }

    #[test]
    fn quotes_and_refuses_what_xl_cannot_read() {
        let mut cfg = DomainConfig::new("q", GuestType::Pv, "k", 16, 1);
        cfg.cmdline = Some(r#"msg="hi \o/""#.into());
        assert!(cfg.render().unwrap().contains(r#"extra = "msg=\"hi \\o/\"""#));
        cfg.cmdline = Some("a\nkernel = \"/etc/shadow\"".into());
        assert!(matches!(cfg.render(), Err(XlError::ControlCharacter { key: "extra", .. })));
    }
}
