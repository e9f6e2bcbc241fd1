//! Small text helpers shared by the chunker, the extractors and the resolver.

/// Byte index of the `char_idx`-th character of `s` (or `s.len()` past the end).
pub fn char_to_byte(s: &str, char_idx: usize) -> usize {
    s.char_indices()
        .nth(char_idx)
        .map(|(b, _)| b)
        .unwrap_or(s.len())
}

/// Number of characters before byte index `byte_idx` (which must be a char boundary).
pub fn byte_to_char(s: &str, byte_idx: usize) -> usize {
    s[..byte_idx].chars().count()
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_and_byte_offsets_round_trip_over_multibyte_text() {
        let s = "§ 1983 – café";
        for (ci, (bi, _)) in s.char_indices().enumerate() {
            assert_eq!(char_to_byte(s, ci), bi);
            assert_eq!(byte_to_char(s, bi), ci);
        }
        assert_eq!(char_to_byte(s, 999), s.len());
    }
}
