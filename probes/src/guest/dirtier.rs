//! The memory dirtier that runs inside the guest: fills a working set with
//! generation-tagged pages, rewrites them at a target rate in 100 ms ticks,
//! records the rate it really achieved per tick, and verifies every page.
//!
//! Exports [`Dirtier`]; the agent binary drives it from its control thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use migbench_pure::tags::{page_seed, seeded_word, PAGE};

use crate::guest::worker::{Pacer, Worker};
use crate::protocol::GuestSample;

const WORDS: usize = PAGE / 8;
/// The filler of a page's compressible part ("migbench").
const PLAIN_WORD: u64 = 0x6d69_6762_656e_6368;
/// Length of one dirtying tick and of one workload sample.
pub const TICK: Duration = Duration::from_millis(100);
const MAX_SAMPLES: usize = 100_000;

struct Memory {
    words: Vec<u64>,
    generation: Vec<u32>,
    writes: u64,
    /// Words from this index on hold [`PLAIN_WORD`].
    plain_from: usize,
    /// Every page's first generation: fresh at each start, so a page
    /// still holding an earlier start's contents (a guest restored from a
    /// saved state, a page the migration lost) never passes for current.
    epoch: u32,
}

/// A first generation no earlier start in this guest used (the clock's
/// nanoseconds and a counter; never 0, which marks an unwritten page).
fn fresh_epoch() -> u32 {
    static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
        .unwrap_or(0);
    let n = STARTS.fetch_add(1, Ordering::Relaxed);
    (nanos ^ n.wrapping_mul(0x9e37_79b9)).max(1)
}

impl Memory {
    /// `pages` pages written once at generation `epoch`.
    fn filled(pages: usize, plain_from: usize, epoch: u32) -> Memory {
        let words = take_reserved(pages * WORDS).unwrap_or_else(|| {
            let mut words = vec![0u64; pages * WORDS];
            populate(&mut words);
            words
        });
        let mut mem = Memory {
            words,
            generation: vec![0; pages],
            writes: 0,
            plain_from,
            epoch,
        };
        for p in 0..pages {
            mem.write_page(p);
        }
        mem
    }

    fn pages(&self) -> usize {
        self.generation.len()
    }

    /// `page`'s words at generation `g`: hashed words (one seed a page)
    /// for the first `plain_from`, a fixed filler after them.
    fn expected(&self, page: usize, g: u32) -> impl Iterator<Item = u64> {
        let seed = page_seed(page as u64, g);
        let plain_from = self.plain_from;
        (0..WORDS).map(move |w| {
            if w < plain_from {
                seeded_word(seed, w)
            } else {
                PLAIN_WORD
            }
        })
    }

    fn write_page(&mut self, page: usize) {
        let g = match self.generation[page] {
            0 => self.epoch,
            g => g.wrapping_add(1).max(1),
        };
        self.generation[page] = g;
        let base = page * WORDS;
        let words = self.expected(page, g);
        for (slot, v) in self.words[base..base + WORDS].iter_mut().zip(words) {
            *slot = v;
        }
        self.writes += 1;
    }

    fn bad_pages(&self) -> u64 {
        (0..self.pages())
            .filter(|&p| {
                let g = self.generation[p];
                let base = p * WORDS;
                g == 0
                    || !self.words[base..base + WORDS]
                        .iter()
                        .copied()
                        .eq(self.expected(p, g))
            })
            .count() as u64
    }
}

/// Have the kernel map `words` now, in one call, instead of one page
/// fault per page on the first write: the same memory, allocated 1.6x
/// faster in a TCG guest (a 64 MiB working set in ~110 ms instead of
/// ~180 ms here). On kernels before 5.14 the call fails and the first
/// writes fault the pages in as before.
fn populate(words: &mut [u64]) {
    let start = words.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(words);
    let page = PAGE - 1;
    let (from, to) = ((start + page) & !page, end & !page);
    if to > from {
        // SAFETY: [from, to) lies inside `words`, memory this process
        // owns; MADV_POPULATE_WRITE only faults its pages in (keeping their
        // contents), it never unmaps or changes them.
        unsafe {
            libc::madvise(
                from as *mut libc::c_void,
                to - from,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

/// Memory mapped ahead for the next working set of its size (see [`reserve`]).
static RESERVED: Mutex<Option<Vec<u64>>> = Mutex::new(None);

/// Map `bytes` (in whole pages) now, zeroed, for the next start whose
/// working set has exactly that size; skipped (the start allocates as
/// usual) unless the guest has that much available with 32 MiB to spare.
/// Whether it did. The agent calls it before saying it is ready, so a
/// guest saved then and restored for each run starts its workload
/// without the kernel allocating its pages (`mb.reserve=` on the kernel
/// command line).
pub fn reserve(bytes: u64) -> bool {
    let words = bytes.div_ceil(PAGE as u64) as usize * WORDS;
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| crate::meminfo::available_bytes(&m))
        .unwrap_or(0);
    if words == 0 || available < bytes + (32 << 20) {
        return false;
    }
    let mut v = vec![0u64; words];
    populate(&mut v);
    *RESERVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    true
}

/// The reserved memory if it holds exactly `words` words; otherwise it is
/// freed (before the caller allocates) and `None`.
fn take_reserved(words: usize) -> Option<Vec<u64>> {
    let mut r = RESERVED.lock().unwrap_or_else(|e| e.into_inner());
    match r.take() {
        Some(v) if v.len() == words => Some(v),
        _ => None,
    }
}

/// A running (or stopped) dirtier with its memory and samples.
pub struct Dirtier {
    mem: Arc<Mutex<Memory>>,
    samples: Arc<Mutex<VecDeque<GuestSample>>>,
    worker: Worker,
}

impl Dirtier {
    /// Allocate and fill `working_set` bytes (rounded up to pages), then
    /// rewrite at `rate` bytes/s in a background thread (if `rate` > 0).
    /// `compressible` (0–1) is the share of each page holding a fixed
    /// filler instead of hashed words: what compression and XBZRLE can
    /// save. Times in samples are ms since `origin`.
    pub fn start(rate: u64, working_set: u64, compressible: f64, origin: Instant) -> Dirtier {
        let pages = working_set.div_ceil(PAGE as u64).max(1) as usize;
        // At least one hashed word per page keeps every write verifiable.
        let plain_from =
            ((WORDS as f64 * (1.0 - compressible.clamp(0.0, 1.0))).ceil() as usize).max(1);
        let mem = Arc::new(Mutex::new(Memory::filled(pages, plain_from, fresh_epoch())));
        let samples = Arc::new(Mutex::new(VecDeque::new()));
        let (m, s) = (mem.clone(), samples.clone());
        let worker = Worker::spawn(rate > 0, move |stop| run(m, s, stop, rate, origin));
        Dirtier {
            mem,
            samples,
            worker,
        }
    }

    /// Stop rewriting; the memory stays for [`Dirtier::verify`].
    pub fn stop(&mut self) {
        self.worker.stop();
    }

    /// The samples that ended after `after_ms` (kept for a later ask).
    pub fn samples_after(&self, after_ms: f64) -> Vec<GuestSample> {
        let s = self.samples.lock().unwrap();
        s.iter().filter(|x| x.end_ms > after_ms).cloned().collect()
    }

    /// Check every page: returns (pages, bad pages, page writes so far).
    pub fn verify(&self) -> (u64, u64, u64) {
        let mem = self.mem.lock().unwrap();
        (mem.pages() as u64, mem.bad_pages(), mem.writes)
    }

    #[cfg(test)]
    fn corrupt(&self, page: usize) {
        let mut mem = self.mem.lock().unwrap();
        mem.words[page * WORDS + 3] ^= 1;
    }
}

fn run(
    mem: Arc<Mutex<Memory>>,
    samples: Arc<Mutex<VecDeque<GuestSample>>>,
    stop: Arc<AtomicBool>,
    rate: u64,
    origin: Instant,
) {
    let mut pace = Pacer::new(rate as f64 * TICK.as_secs_f64() / PAGE as f64);
    let mut next = 0usize;
    let mut tick_start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        crate::guest::stall::wait();
        let n = pace.due();
        {
            let mut m = mem.lock().unwrap();
            let pages = m.pages();
            for _ in 0..n {
                m.write_page(next);
                next = (next + 1) % pages;
            }
        }
        let deadline = tick_start + TICK;
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        let end = Instant::now();
        let mut s = samples.lock().unwrap();
        if s.len() >= MAX_SAMPLES {
            s.pop_front();
        }
        s.push_back(GuestSample {
            end_ms: end.duration_since(origin).as_secs_f64() * 1e3,
            window_ms: end.duration_since(tick_start).as_secs_f64() * 1e3,
            bytes: (n * PAGE) as u64,
        });
        tick_start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_working_set_is_used_only_by_a_start_of_its_size() {
        assert!(reserve(16 * PAGE as u64), "a test host has 64 KiB to spare");
        assert!(take_reserved(8 * WORDS).is_none(), "another size frees it");
        assert!(take_reserved(16 * WORDS).is_none(), "and it is gone");
        assert!(reserve(16 * PAGE as u64));
        let d = Dirtier::start(0, 16 * PAGE as u64, 0.0, Instant::now());
        assert!(take_reserved(16 * WORDS).is_none(), "the start took it");
        assert_eq!(d.verify(), (16, 0, 16), "filled like allocated memory");
    }

    #[test]
    fn fill_only_dirtier_verifies_clean_and_detects_a_flipped_bit() {
        let d = Dirtier::start(0, 64 * PAGE as u64, 0.0, Instant::now());
        assert_eq!(d.verify(), (64, 0, 64));
        d.corrupt(10);
        assert_eq!(d.verify().1, 1);
    }

    #[test]
    fn a_page_left_from_an_earlier_start_is_caught_because_each_start_has_its_own_epoch() {
        // A guest restored from a saved state (or a migration that lost a
        // page) may hold a page as an earlier start wrote it.
        let (a, b) = (fresh_epoch(), fresh_epoch());
        assert_ne!(a, b);
        let earlier = Memory::filled(16, WORDS, a);
        let stale = |mut now: Memory| {
            now.words[5 * WORDS..6 * WORDS].copy_from_slice(&earlier.words[5 * WORDS..6 * WORDS]);
            now.bad_pages()
        };
        assert_eq!(stale(Memory::filled(16, WORDS, b)), 1);
        // With the same first generation the stale page would pass.
        assert_eq!(stale(Memory::filled(16, WORDS, a)), 0);
    }

    #[test]
    fn running_dirtier_writes_at_about_its_rate_and_stays_consistent() {
        let mut d = Dirtier::start(4 << 20, 256 * PAGE as u64, 0.75, Instant::now());
        std::thread::sleep(Duration::from_millis(450));
        d.stop();
        let samples = d.samples_after(f64::NEG_INFINITY);
        assert!(samples.len() >= 3, "{samples:?}");
        // 4 MiB/s in 100 ms ticks is ~102 pages per tick.
        let per_tick = samples[1].bytes / PAGE as u64;
        assert!((100..=104).contains(&per_tick), "{per_tick}");
        let (pages, bad, writes) = d.verify();
        assert_eq!((pages, bad), (256, 0));
        assert!(writes > 256);
        // Kept: asked again from the last one's end, nothing is new.
        assert_eq!(d.samples_after(f64::NEG_INFINITY).len(), samples.len());
        let last = samples.last().unwrap().end_ms;
        assert!(d.samples_after(last).is_empty());
    }
}
