//! Generation tags: the patterns the guest agent writes into memory pages
//! and disk blocks and verifies after migration, and that the host writes
//! as a disk's base data. Any stale, misplaced or torn page or block
//! shows as a pattern mismatch.

/// Memory page size the dirtier works in.
pub const PAGE: usize = 4096;

const MAGIC: u64 = 0x6d69_6762_656e_6368; // "migbench"

/// Generation of the base data the host writes into an image.
pub const BASE_GENERATION: u32 = 1;

/// The 64-bit word at `word` of page `page` at generation `generation`: the
/// pattern the dirtier writes and the verifier expects. Every page and
/// generation gives a different pattern, so a stale or misplaced page shows.
pub fn page_word(page: u64, generation: u32, word: usize) -> u64 {
    seeded_word(page_seed(page, generation), word)
}

/// What all words of `page` at `generation` share: computed once a page
/// where a whole page is written or checked ([`seeded_word`] per word).
#[inline]
pub fn page_seed(page: u64, generation: u32) -> u64 {
    let mut z = (page << 20) ^ (generation as u64) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Word `word` of the page whose [`page_seed`] is `seed`.
#[inline]
pub fn seeded_word(seed: u64, word: usize) -> u64 {
    seed ^ (word as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a over 8-byte words: cheap and order-sensitive.
    data.chunks_exact(8).fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
        (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Fill `buf` (a whole block) with block `index` at `generation`: what the
/// guest writes, and what the host writes as base data.
pub fn render_block(buf: &mut [u8], index: u64, generation: u32) {
    for (w, chunk) in buf[32..].chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&page_word(index | (1 << 40), generation, w).to_le_bytes());
    }
    let sum = checksum(&buf[32..]);
    buf[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    buf[8..16].copy_from_slice(&index.to_le_bytes());
    buf[16..24].copy_from_slice(&(generation as u64).to_le_bytes());
    buf[24..32].copy_from_slice(&sum.to_le_bytes());
}

/// Whether `buf` holds block `index` at `generation`, intact.
pub fn block_intact(buf: &[u8], index: u64, generation: u32) -> bool {
    let word = |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
    word(0) == MAGIC
        && word(1) == index
        && word(2) == generation as u64
        && word(3) == checksum(&buf[32..])
        && buf[32..].chunks_exact(8).enumerate().all(|(w, c)| {
            u64::from_le_bytes(c.try_into().unwrap()) == page_word(index | (1 << 40), generation, w)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_patterns_differ_by_page_and_generation() {
        assert_ne!(page_word(1, 1, 0), page_word(1, 2, 0));
        assert_ne!(page_word(1, 1, 0), page_word(2, 1, 0));
        assert_ne!(page_word(1, 1, 0), page_word(1, 1, 1));
    }

    #[test]
    fn blocks_check_only_as_written() {
        let mut b = vec![0u8; 4096];
        render_block(&mut b, 7, 3);
        assert!(block_intact(&b, 7, 3));
        assert!(!block_intact(&b, 7, 4));
        assert!(!block_intact(&b, 8, 3));
        b[100] ^= 1;
        assert!(!block_intact(&b, 7, 3));
    }
}
