//! Lower-case hex, as image digests and cache keys spell bytes.

use std::fmt::Write;

pub fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(text, "{b:02x}").expect("writing to a String cannot fail");
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_lower_case_with_leading_zeros() {
        assert_eq!(super::encode(&[0x00, 0x0f, 0xab]), "000fab");
    }
}
