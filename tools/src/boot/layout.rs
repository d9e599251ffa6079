//! Load addresses: every image 2 MiB-aligned inside the board's load window,
//! pinned images where the user pinned them, and nothing overlapping.

use super::board::LoadWindow;
use super::BootError;

pub const ALIGN: u64 = 2 << 20;

/// What the layout needs to know about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What the image is for, e.g. "dom0 kernel", used in messages and comments.
    pub role: String,
    /// Bytes the image occupies in RAM, including room it grows into (a device tree after `fdt resize`).
    pub span: u64,
    pub pinned: Option<u64>,
}

/// A range some other agent will write to (e.g. where `bootm` copies Xen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub role: String,
    pub start: u64,
    pub end: u64,
}

fn align_up(addr: u64) -> u64 {
    addr.div_ceil(ALIGN) * ALIGN
}

/// Places `requests` in order; returns one address per request.
pub fn place(requests: &[Request], window: LoadWindow, claims: &[Claim]) -> Result<Vec<u64>, BootError> {
    let mut taken: Vec<Claim> = claims.to_vec();
    let mut addresses = vec![0; requests.len()];
    let overlap =
        |taken: &[Claim], start: u64, end: u64| taken.iter().find(|c| start < c.end && c.start < end).cloned();

    for (i, req) in requests.iter().enumerate().filter(|(_, r)| r.pinned.is_some()) {
        let start = req.pinned.expect("filtered on pinned");
        let end = start + req.span;
        if start % ALIGN != 0 {
            return Err(BootError::Misaligned { role: req.role.clone(), address: start });
        }
        if start < window.start || end > window.end {
            return Err(BootError::OutsideWindow { role: req.role.clone(), start, end, window });
        }
        if let Some(other) = overlap(&taken, start, end) {
            return Err(BootError::Overlap { first: other.role, second: req.role.clone(), start, end });
        }
        taken.push(Claim { role: req.role.clone(), start, end });
        addresses[i] = start;
    }
    let mut cursor = window.start;
    for (i, req) in requests.iter().enumerate().filter(|(_, r)| r.pinned.is_none()) {
        let mut start = align_up(cursor);
        while let Some(other) = overlap(&taken, start, start + req.span) {
            start = align_up(other.end);
        }
        let end = start + req.span;
        if end > window.end {
            return Err(BootError::DoesNotFit { role: req.role.clone(), end, window });
        }
        taken.push(Claim { role: req.role.clone(), start, end });
        addresses[i] = start;
        cursor = end;
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: LoadWindow = LoadWindow { start: 0x4040_0000, end: 0x5000_0000 };

    fn req(role: &str, span: u64, pinned: Option<u64>) -> Request {
        Request { role: role.into(), span, pinned }
    }

    #[test]
    fn packs_images_2mib_aligned_in_order() {
        let got =
            place(&[req("xen", 0xf_0000, None), req("kernel", 0x200_0001, None), req("ramdisk", 1, None)], WINDOW, &[])
                .unwrap();
        assert_eq!(got, [0x4040_0000, 0x4060_0000, 0x4280_0000]);
    }

    #[test]
    fn flows_around_pinned_images_and_claims() {
        let claims = [Claim { role: "bootm copy of xen".into(), start: 0x4040_0000, end: 0x4050_0000 }];
        let got =
            place(&[req("kernel", 0x30_0000, None), req("dtb", 0x1000, Some(0x4060_0000))], WINDOW, &claims).unwrap();
        assert_eq!(got, [0x4080_0000, 0x4060_0000]);
    }

    #[test]
    fn refuses_what_does_not_fit_overlaps_and_misalignment() {
        let err = place(&[req("dom0 ramdisk", 0x1000_0000, None)], WINDOW, &[]).unwrap_err().to_string();
        assert!(err.contains("dom0 ramdisk") && err.contains("0x50000000"), "{err}");
        let err =
            place(&[req("kernel", 0x40_0000, Some(0x4040_0000)), req("dtb", 0x1000, Some(0x4060_0000))], WINDOW, &[])
                .unwrap_err()
                .to_string();
        assert_eq!(err, "dtb at 0x40600000..0x40601000 would overlap kernel: move one of them");
        let err = place(&[req("a", 1, Some(0x4041_0000))], WINDOW, &[]).unwrap_err().to_string();
        assert!(err.contains("2 MiB"), "{err}");
        let err = place(&[req("a", 1, Some(0x3000_0000))], WINDOW, &[]).unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");
    }
}
