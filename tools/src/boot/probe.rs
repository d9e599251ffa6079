//! What an image file is, from its first bytes: enough to refuse an x86
//! kernel on an arm64 board or an ARM-typed Xen uImage before the board hangs.

use std::fmt;

/// The kinds of files a boot script loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Linux arm64 `Image` (also Xen's and Zephyr's arm64 images).
    Arm64Image,
    /// A u-boot legacy image.
    UImage {
        arch: u8,
        image_type: u8,
        load: u32,
        entry: u32,
        size: u32,
    },
    /// A flattened device tree blob.
    DeviceTree,
    /// A compressed stream (gzip, zstd, xz, lz4), e.g. a cpio ramdisk or an Image.gz.
    Compressed(&'static str),
    /// An uncompressed newc cpio archive.
    Cpio,
    /// An x86 bzImage or x86 ELF: never bootable on an arm64 board.
    X86Kernel,
    /// A 32-bit ARM zImage.
    Arm32ZImage,
    Unknown,
}

pub const UIMAGE_ARCH_ARM: u8 = 2;
pub const UIMAGE_ARCH_ARM64: u8 = 22;
pub const UIMAGE_TYPE_KERNEL: u8 = 2;

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Arm64Image => f.write_str("an arm64 Image"),
            Kind::UImage { arch, image_type, .. } => {
                let arch = match *arch {
                    UIMAGE_ARCH_ARM => "ARM (32-bit)".to_owned(),
                    UIMAGE_ARCH_ARM64 => "AArch64".to_owned(),
                    other => format!("architecture {other}"),
                };
                write!(f, "a u-boot uImage ({arch}, image type {image_type})")
            }
            Kind::DeviceTree => f.write_str("a device tree blob"),
            Kind::Compressed(format) => write!(f, "{format}-compressed data"),
            Kind::Cpio => f.write_str("a cpio archive"),
            Kind::X86Kernel => f.write_str("an x86 kernel"),
            Kind::Arm32ZImage => f.write_str("a 32-bit ARM zImage"),
            Kind::Unknown => f.write_str("of unknown type"),
        }
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Identifies a file from its first 4 KiB (or less).
pub fn identify(head: &[u8]) -> Kind {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if head.get(0x38..0x3c) == Some(b"ARM\x64") {
        return Kind::Arm64Image;
    }
    if be32(head, 0) == Some(0x2705_1956) && head.len() >= 64 {
        return Kind::UImage {
            arch: head[29],
            image_type: head[30],
            load: be32(head, 16).unwrap_or(0),
            entry: be32(head, 20).unwrap_or(0),
            size: be32(head, 12).unwrap_or(0),
        };
    }
    if be32(head, 0) == Some(0xd00d_feed) {
        return Kind::DeviceTree;
    }
    if head.get(0x202..0x206) == Some(b"HdrS") {
        return Kind::X86Kernel;
    }
    // ELF, e_machine EM_X86_64 (62) or EM_386 (3)
    if starts(b"\x7fELF") && matches!(head.get(18), Some(62) | Some(3)) {
        return Kind::X86Kernel;
    }
    if le32(head, 0x24) == Some(0x016f_2818) {
        return Kind::Arm32ZImage;
    }
    if starts(b"070701") || starts(b"070702") {
        return Kind::Cpio;
    }
    for (magic, format) in [
        (&b"\x1f\x8b"[..], "gzip"),
        (&b"\x28\xb5\x2f\xfd"[..], "zstd"),
        (&b"\xfd7zXZ\x00"[..], "xz"),
        (&b"\x02\x21\x4c\x18"[..], "lz4"),
    ] {
        if starts(magic) {
            return Kind::Compressed(format);
        }
    }
    Kind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm64_image() -> Vec<u8> {
        let mut head = vec![0u8; 64];
        head[0x38..0x3c].copy_from_slice(b"ARM\x64");
        head
    }

    #[test]
    fn tells_kernels_apart() {
        assert_eq!(identify(&arm64_image()), Kind::Arm64Image);
        let mut bz = vec![0u8; 0x210];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(identify(&bz), Kind::X86Kernel);
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(20, 0);
        elf[18] = 62;
        assert_eq!(identify(&elf), Kind::X86Kernel);
        let mut zimage = vec![0u8; 0x30];
        zimage[0x24..0x28].copy_from_slice(&0x016f_2818u32.to_le_bytes());
        assert_eq!(identify(&zimage), Kind::Arm32ZImage);
    }

    #[test]
    fn reads_uimage_headers() {
        let mut head = vec![0u8; 64];
        head[0..4].copy_from_slice(&0x2705_1956u32.to_be_bytes());
        head[12..16].copy_from_slice(&0x10_0000u32.to_be_bytes());
        head[16..20].copy_from_slice(&0x20_0000u32.to_be_bytes());
        head[29] = UIMAGE_ARCH_ARM;
        head[30] = UIMAGE_TYPE_KERNEL;
        let kind = identify(&head);
        assert_eq!(kind, Kind::UImage { arch: 2, image_type: 2, load: 0x20_0000, entry: 0, size: 0x10_0000 });
        assert_eq!(kind.to_string(), "a u-boot uImage (ARM (32-bit), image type 2)");
    }

    #[test]
    fn recognises_ramdisks_and_trees() {
        assert_eq!(identify(b"\x1f\x8b\x08\x00"), Kind::Compressed("gzip"));
        assert_eq!(identify(b"\x28\xb5\x2f\xfd...."), Kind::Compressed("zstd"));
        assert_eq!(identify(b"\xfd7zXZ\x00.."), Kind::Compressed("xz"));
        assert_eq!(identify(b"07070100000001"), Kind::Cpio);
        assert_eq!(identify(&0xd00d_feedu32.to_be_bytes()), Kind::DeviceTree);
        assert_eq!(identify(b"hello"), Kind::Unknown);
    }
}
