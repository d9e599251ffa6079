//! u-boot's legacy image format (`include/image.h`), for boot scripts:
//! what `mkimage -A arm64 -O linux -T script -C none -n NAME -d boot.cmd`
//! writes, byte for byte, and a reader that checks both CRCs.

const MAGIC: u32 = 0x2705_1956;
const HEADER_LEN: usize = 64;
const NAME_LEN: usize = 32;
const OS_LINUX: u8 = 5;
const ARCH_ARM64: u8 = 22;
const TYPE_SCRIPT: u8 = 6;
const COMP_NONE: u8 = 0;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UImageError {
    #[error("image name {0:?} is longer than u-boot's 32 bytes: shorten it")]
    NameTooLong(String),
    #[error("boot script is too large for a legacy image ({0} bytes)")]
    TooLarge(usize),
    #[error("not a u-boot legacy image: {0}")]
    Malformed(String),
    #[error(
        "u-boot image header CRC mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt"
    )]
    HeaderCrc { stored: u32, computed: u32 },
    #[error("u-boot image data CRC mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt")]
    DataCrc { stored: u32, computed: u32 },
}

/// A boot script packed as a legacy `script` image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptImage {
    pub name: String,
    /// Seconds since the epoch; use SOURCE_DATE_EPOCH for reproducible output.
    pub timestamp: u32,
    pub text: Vec<u8>,
}

impl ScriptImage {
    /// Serializes the header, the one-entry length table and the script text.
    pub fn to_bytes(&self) -> Result<Vec<u8>, UImageError> {
        if self.name.len() > NAME_LEN {
            return Err(UImageError::NameTooLong(self.name.clone()));
        }
        let text_len = u32::try_from(self.text.len()).map_err(|_| UImageError::TooLarge(self.text.len()))?;
        let mut data = Vec::with_capacity(8 + self.text.len());
        data.extend_from_slice(&text_len.to_be_bytes());
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(&self.text);
        let data_len = u32::try_from(data.len()).map_err(|_| UImageError::TooLarge(data.len()))?;

        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[8..12].copy_from_slice(&self.timestamp.to_be_bytes());
        header[12..16].copy_from_slice(&data_len.to_be_bytes());
        // load address and entry point stay 0 for scripts
        header[24..28].copy_from_slice(&crc32fast::hash(&data).to_be_bytes());
        header[28] = OS_LINUX;
        header[29] = ARCH_ARM64;
        header[30] = TYPE_SCRIPT;
        header[31] = COMP_NONE;
        header[32..32 + self.name.len()].copy_from_slice(self.name.as_bytes());
        let hcrc = crc32fast::hash(&header);
        header[4..8].copy_from_slice(&hcrc.to_be_bytes());

        let mut out = header.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Parses a script image, checking magic, type, both CRCs and the length table.
    pub fn parse(bytes: &[u8]) -> Result<Self, UImageError> {
        let bad = |why: &str| UImageError::Malformed(why.to_owned());
        if bytes.len() < HEADER_LEN {
            return Err(bad("shorter than the 64-byte header"));
        }
        let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        if be32(0) != MAGIC {
            return Err(bad("wrong magic number"));
        }
        let mut header = bytes[..HEADER_LEN].to_vec();
        header[4..8].fill(0);
        let (stored, computed) = (be32(4), crc32fast::hash(&header));
        if stored != computed {
            return Err(UImageError::HeaderCrc { stored, computed });
        }
        if bytes[30] != TYPE_SCRIPT {
            return Err(bad(&format!("image type {} is not a script (6)", bytes[30])));
        }
        let data_len = be32(12) as usize;
        let data =
            bytes.get(HEADER_LEN..HEADER_LEN + data_len).ok_or_else(|| bad("data shorter than the header says"))?;
        let (stored, computed) = (be32(24), crc32fast::hash(data));
        if stored != computed {
            return Err(UImageError::DataCrc { stored, computed });
        }
        if data.len() < 8 || data[4..8] != [0; 4] {
            return Err(bad("script length table is not one entry long"));
        }
        let text_len = u32::from_be_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        let text = data.get(8..8 + text_len).ok_or_else(|| bad("script text shorter than its length entry"))?;
        let name_field = &bytes[32..HEADER_LEN];
        let name_end = name_field.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        Ok(Self {
            name: String::from_utf8_lossy(&name_field[..name_end]).into_owned(),
            timestamp: be32(8),
            text: text.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sample() -> ScriptImage {
        ScriptImage {
            name: "runx boot".into(),
            timestamp: 1_700_000_000,
            text: b"echo hello from runx\nbooti 0x40400000 - ${fdt_addr}\n".to_vec(),
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("runx-uimage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn byte_identical_to_mkimage_and_accepted_by_dumpimage() {
        let img = sample();
        let dir = scratch("mkimage");
        std::fs::write(dir.join("boot.cmd"), &img.text).unwrap();
        let status = Command::new("mkimage")
            .args([
                "-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", &img.name, "-d", "boot.cmd",
                "boot.scr",
            ])
            .env("SOURCE_DATE_EPOCH", img.timestamp.to_string())
            .current_dir(&dir)
            .output()
            .expect("mkimage must be installed (apt-get install u-boot-tools)");
        assert!(status.status.success(), "{status:?}");
        let ours = img.to_bytes().unwrap();
        assert_eq!(ours, std::fs::read(dir.join("boot.scr")).unwrap());

        std::fs::write(dir.join("ours.scr"), &ours).unwrap();
        let listed =
            Command::new("dumpimage").args(["-T", "script", "-l", "ours.scr"]).current_dir(&dir).output().unwrap();
        assert!(listed.status.success(), "dumpimage refused our image: {listed:?}");
        let listing = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listing.contains("Image Name:   runx boot") && listing.contains("AArch64 Linux Script (uncompressed)"),
            "{listing}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn round_trips() {
        let img = sample();
        assert_eq!(ScriptImage::parse(&img.to_bytes().unwrap()).unwrap(), img);
    }

    #[test]
    fn detects_corruption_in_header_and_data() {
        let good = sample().to_bytes().unwrap();
        let mut bad_data = good.clone();
        *bad_data.last_mut().unwrap() ^= 1;
        assert!(matches!(ScriptImage::parse(&bad_data), Err(UImageError::DataCrc { .. })));
        let mut bad_header = good.clone();
        bad_header[40] ^= 1;
        assert!(matches!(ScriptImage::parse(&bad_header), Err(UImageError::HeaderCrc { .. })));
        assert!(matches!(ScriptImage::parse(&good[..70]), Err(UImageError::Malformed(_))));
    }

    #[test]
    fn refuses_names_longer_than_u_boot_allows() {
        let img = ScriptImage { name: "n".repeat(33), ..sample() };
        assert_eq!(img.to_bytes(), Err(UImageError::NameTooLong("n".repeat(33))));
    }
}
