//! Where a saved guest's non-zero memory lies: the RAM pages of a QEMU
//! 7.2 migration stream written from a paused guest (a snapshot-started
//! guest's saved state), read back as one flag per page of `pc.ram`.
//! Which pages an idle guest's last pass meets last decides its pause.

use thiserror::Error;

/// A page's header flags (QEMU's `migration/ram.c`, 7.2).
const ZERO: u64 = 0x02;
const MEM_SIZE: u64 = 0x04;
const PAGE: u64 = 0x08;
const EOS: u64 = 0x10;
const CONTINUE: u64 = 0x20;
const FLAGS: u64 = 0xfff;
const PAGE_SIZE: usize = 4096;
/// Section types and the footer that ends each section part.
const SECTION_START: u8 = 0x01;
const SECTION_PART: u8 = 0x02;
const SECTION_END: u8 = 0x03;
const SECTION_FOOTER: u8 = 0x7e;
/// The guest's main RAM block on a PC machine.
const MAIN_RAM: &str = "pc.ram";

/// Why a stream is not a whole saved state of a paused guest.
#[derive(Debug, Error, PartialEq)]
pub enum LayoutError {
    #[error("not a QEMU saved state (no QEVM header)")]
    NotAState,
    #[error("no RAM section (a saved state of a guest without RAM?)")]
    NoRam,
    #[error("the stream ends inside the RAM section, at byte {0}")]
    Truncated(usize),
    #[error(
        "page flags {flags:#x} at byte {at} are not a plain pre-copy page (compression or XBZRLE?)"
    )]
    UnknownFlags { flags: u64, at: usize },
    #[error("no {MAIN_RAM} block in the RAM section")]
    NoMainRam,
    #[error("{MAIN_RAM} is said to be {claimed} bytes, more than a stream of {len} bytes can hold (9 bytes a page at least)")]
    TooLarge { claimed: u64, len: usize },
    #[error("byte {at}: {what}")]
    Malformed { at: usize, what: String },
    #[error("{missing} pages of {MAIN_RAM} never came (a state saved from a running guest, or cut short?)")]
    MissingPages { missing: usize },
}

/// The main RAM's pages as the state holds them: whether each is non-zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    nonzero: Vec<bool>,
}

impl Layout {
    /// The main RAM's size, bytes.
    pub fn ram_bytes(&self) -> u64 {
        (self.nonzero.len() * PAGE_SIZE) as u64
    }

    /// The non-zero bytes of `[from, to)` (byte offsets into the RAM).
    pub fn nonzero_between(&self, from: u64, to: u64) -> u64 {
        let page = |b: u64| (b as usize / PAGE_SIZE).min(self.nonzero.len());
        let n = self.nonzero[page(from)..page(to).max(page(from))]
            .iter()
            .filter(|&&v| v)
            .count();
        (n * PAGE_SIZE) as u64
    }

    /// The non-zero bytes of the RAM's last `window` bytes: what a first
    /// pass, sent in address order, meets last.
    pub fn nonzero_in_top(&self, window: u64) -> u64 {
        let size = self.ram_bytes();
        self.nonzero_between(size.saturating_sub(window), size)
    }

    /// The non-zero bytes in each `bin`-byte stretch from the top of RAM
    /// down (the last one shorter where the RAM is not a multiple of
    /// `bin`, as a TCG guest's padded RAM is not).
    pub fn map_from_top(&self, bin: u64) -> Vec<u64> {
        let size = self.ram_bytes();
        (0..size.div_ceil(bin))
            .map(|k| self.nonzero_between(size.saturating_sub((k + 1) * bin), size - k * bin))
            .collect()
    }
}

/// The layout of the saved state in `bytes`.
pub fn read(bytes: &[u8]) -> Result<Layout, LayoutError> {
    if bytes.get(..4) != Some(b"QEVM") {
        return Err(LayoutError::NotAState);
    }
    // The RAM section's start: type, section id, idstr "ram", instance
    // id, version; what comes before it (the machine's configuration) is
    // not needed.
    let start = bytes
        .windows(4)
        .enumerate()
        .find(|(i, w)| *w == b"\x03ram" && *i >= 5 && bytes[i - 5] == SECTION_START)
        .map(|(i, _)| i - 4)
        .ok_or(LayoutError::NoRam)?;
    let section: [u8; 4] = bytes[start..start + 4].try_into().expect("4 bytes");
    let mut s = Stream {
        bytes,
        at: start + 4 + 4 + 8,
    };
    let malformed = |at: usize, what: &str| LayoutError::Malformed {
        at,
        what: what.to_string(),
    };
    let header = s.be64()?;
    if header & FLAGS != MEM_SIZE {
        return Err(LayoutError::NoRam);
    }
    // Each block's name and size, together the header's total.
    let (total, mut listed) = (header & !FLAGS, 0u64);
    let mut main_size = None;
    while listed < total {
        let name = s.name()?;
        let size = s.be64()?;
        if name == MAIN_RAM {
            main_size = Some(size);
        }
        listed = listed.saturating_add(size);
    }
    if listed != total {
        // Postcopy or ignore-shared add fields per block: not read here.
        return Err(malformed(
            s.at,
            "the RAM blocks' sizes do not add up to the total",
        ));
    }
    let main_size = main_size.ok_or(LayoutError::NoMainRam)?;
    // Each page comes once, a zero page in 9 bytes: a claim beyond that
    // is not this kind of state (and must not size the map).
    if main_size / PAGE_SIZE as u64 > (bytes.len() / 9) as u64 {
        return Err(LayoutError::TooLarge {
            claimed: main_size,
            len: bytes.len(),
        });
    }
    let pages = main_size as usize / PAGE_SIZE;
    let mut nonzero = vec![false; pages];
    let mut seen = vec![false; pages];
    let mut in_main = None;
    loop {
        let at = s.at;
        let header = s.be64()?;
        let (flags, offset) = (header & FLAGS, header & !FLAGS);
        if flags == EOS {
            // A part ends with a footer; the next part or the end follows,
            // or another section (the devices): the RAM is all read.
            if s.byte()? != SECTION_FOOTER || s.take(4)? != section {
                return Err(malformed(
                    s.at - 1,
                    "a RAM part does not end with its footer",
                ));
            }
            match s.byte()? {
                SECTION_PART | SECTION_END if s.take(4)? == section => continue,
                SECTION_PART | SECTION_END => {
                    return Err(malformed(s.at - 4, "another iterative section's part"))
                }
                _ => break,
            }
        }
        let kind = flags & !CONTINUE;
        if kind != ZERO && kind != PAGE {
            return Err(LayoutError::UnknownFlags { flags, at });
        }
        if flags & CONTINUE == 0 {
            in_main = Some(s.name()? == MAIN_RAM);
        }
        let main = in_main.ok_or_else(|| malformed(at, "a page before any block is named"))?;
        let value = if kind == ZERO {
            s.byte()? != 0
        } else {
            s.take(PAGE_SIZE)?.iter().any(|&b| b != 0)
        };
        if main {
            let page = offset as usize / PAGE_SIZE;
            if page >= pages {
                return Err(malformed(at, "a page beyond the end of the RAM"));
            }
            (nonzero[page], seen[page]) = (value, true);
        }
    }
    let missing = seen.iter().filter(|&&v| !v).count();
    if missing > 0 {
        return Err(LayoutError::MissingPages { missing });
    }
    Ok(Layout { nonzero })
}

/// A cursor over the stream; running out is [`LayoutError::Truncated`].
struct Stream<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Stream<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LayoutError> {
        let got = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(LayoutError::Truncated(self.at))?;
        self.at += n;
        Ok(got)
    }
    fn byte(&mut self) -> Result<u8, LayoutError> {
        Ok(self.take(1)?[0])
    }
    fn be64(&mut self) -> Result<u64, LayoutError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    fn name(&mut self) -> Result<String, LayoutError> {
        let n = self.byte()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved state of `pages` (main RAM, `Some(fill)` a page of that
    /// byte, `None` a zero page) and one ROM page, in `parts` parts.
    fn state(pages: &[Option<u8>], parts: usize) -> Vec<u8> {
        let mut v = b"QEVM\0\0\0\x03\x07junk".to_vec();
        v.extend([SECTION_START, 0, 0, 0, 2, 3]);
        v.extend(b"ram");
        v.extend([0u8; 8]);
        let main = (pages.len() * PAGE_SIZE) as u64;
        v.extend(((main + PAGE_SIZE as u64) | MEM_SIZE).to_be_bytes());
        for (name, size) in [(MAIN_RAM, main), ("pc.rom", PAGE_SIZE as u64)] {
            v.push(name.len() as u8);
            v.extend(name.as_bytes());
            v.extend(size.to_be_bytes());
        }
        let per = pages.len().div_ceil(parts);
        for (k, chunk) in pages.chunks(per).enumerate() {
            if k > 0 {
                v.extend([SECTION_PART, 0, 0, 0, 2]);
            }
            for (i, p) in chunk.iter().enumerate() {
                let offset = ((k * per + i) * PAGE_SIZE) as u64;
                let cont = if i == 0 { 0 } else { CONTINUE };
                match p {
                    None => v.extend((offset | ZERO | cont).to_be_bytes()),
                    Some(_) => v.extend((offset | PAGE | cont).to_be_bytes()),
                }
                if i == 0 {
                    v.push(MAIN_RAM.len() as u8);
                    v.extend(MAIN_RAM.as_bytes());
                }
                match p {
                    None => v.push(0),
                    Some(b) => v.extend(std::iter::repeat_n(*b, PAGE_SIZE)),
                }
            }
            // A ROM page full of ones, in its own block: not the RAM's.
            v.extend(PAGE.to_be_bytes());
            v.push(6);
            v.extend(b"pc.rom");
            v.extend([1u8; PAGE_SIZE]);
            v.extend(EOS.to_be_bytes());
            v.extend([SECTION_FOOTER, 0, 0, 0, 2]);
        }
        v.extend([0x04, 0, 0, 0, 3]); // the devices' section follows
        v
    }

    #[test]
    fn non_zero_pages_are_found_where_the_state_put_them_across_parts() {
        let mut pages = vec![None; 64];
        pages[0] = Some(7);
        pages[60] = Some(1);
        pages[63] = Some(0xff);
        let layout = read(&state(&pages, 3)).unwrap();
        assert_eq!(layout.ram_bytes(), 64 * 4096);
        assert_eq!(layout.nonzero_in_top(4 * 4096), 2 * 4096);
        assert_eq!(layout.nonzero_in_top(1 << 30), 3 * 4096);
        assert_eq!(layout.map_from_top(32 * 4096), vec![2 * 4096, 4096]);
        assert_eq!(layout.map_from_top(40 * 4096), vec![2 * 4096, 4096]);
        // A page whose contents are zero though sent whole is zero.
        pages[10] = Some(0);
        assert_eq!(
            read(&state(&pages, 1)).unwrap().nonzero_in_top(1 << 30),
            3 * 4096
        );
    }

    #[test]
    fn a_stream_that_is_not_a_whole_saved_state_is_refused_saying_why() {
        assert_eq!(read(b"not a state"), Err(LayoutError::NotAState));
        assert_eq!(read(b"QEVM\0\0\0\x03"), Err(LayoutError::NoRam));
        let whole = state(&[Some(1), None], 1);
        let cut = &whole[..whole.len() - 4200];
        assert!(matches!(read(cut), Err(LayoutError::Truncated(_))));
        let mut compressed = whole.clone();
        let first = whole.windows(6).position(|w| w == b"pc.rom").unwrap() + 6 + 8;
        compressed[first + 7] |= 0x40; // XBZRLE on the first page
        assert!(matches!(
            read(&compressed),
            Err(LayoutError::UnknownFlags { flags, .. }) if flags & 0x40 != 0
        ));
        // A page never sent is not a zero page.
        let mut short = state(&[Some(1), None, None], 1);
        let gone = ((2 * 4096) | ZERO | CONTINUE).to_be_bytes();
        let last = short.windows(8).rposition(|w| w == gone).unwrap();
        short.drain(last..last + 9);
        assert_eq!(read(&short), Err(LayoutError::MissingPages { missing: 1 }));
        // A RAM size no stream of this length holds.
        let mut huge = whole.clone();
        let size_at = whole.windows(6).position(|w| w == b"pc.ram").unwrap() + 6;
        huge[size_at..size_at + 8].copy_from_slice(&(1u64 << 50).to_be_bytes());
        let total = ((1u64 << 50) + 4096) | MEM_SIZE;
        huge[size_at - 15..size_at - 7].copy_from_slice(&total.to_be_bytes());
        assert!(matches!(read(&huge), Err(LayoutError::TooLarge { .. })));
    }
}
