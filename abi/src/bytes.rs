//! Little-endian field access on byte slices that never panics.

/// Reads a little-endian `u16` at `offset`, or `None` past the end.
pub fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let field = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes([field[0], field[1]]))
}

/// Reads a little-endian `u32` at `offset`, or `None` past the end.
pub fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    let mut raw = [0u8; 4];
    raw.copy_from_slice(field);
    Some(u32::from_le_bytes(raw))
}

/// Reads a little-endian `u64` at `offset`, or `None` past the end.
pub fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let field = bytes.get(offset..offset.checked_add(8)?)?;
    let mut raw = [0u8; 8];
    raw.copy_from_slice(field);
    Some(u64::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_fields() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u16_at(&bytes, 0), Some(0x0201));
        assert_eq!(u32_at(&bytes, 1), Some(0x0504_0302));
        assert_eq!(u64_at(&bytes, 1), Some(0x0908_0706_0504_0302));
    }

    #[test]
    fn out_of_range_is_none() {
        let bytes = [0u8; 8];
        assert_eq!(u64_at(&bytes, 1), None);
        assert_eq!(u32_at(&bytes, usize::MAX - 1), None);
        assert_eq!(u16_at(&bytes, 7), None);
    }
}
