//! The guest's disk workload: writes generation-tagged, checksummed blocks
//! to a block device with O_DIRECT (so every write reaches the virtual
//! disk, not the guest's page cache), first a fill, then at a target rate,
//! keeps the map of what it wrote, and verifies every written block by
//! reading it back with O_DIRECT — after migration, from the destination's
//! disk.
//!
//! Block layout: 32-byte header (magic, block index, generation, checksum
//! of the rest) followed by a pattern derived from (index, generation).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use migbench_pure::tags::{block_intact, render_block, BASE_GENERATION};

use crate::guest::worker::{Pacer, Worker};
use crate::protocol::{DiskRequest, DiskVerdict};

const ALIGN: usize = 4096;
const TICK: Duration = Duration::from_millis(100);

/// A heap buffer aligned for O_DIRECT.
struct Aligned {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is plain memory owned by one `Aligned`; moving it to
// another thread moves ownership.
unsafe impl Send for Aligned {}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let layout = std::alloc::Layout::from_size_align(len, ALIGN).expect("valid layout");
        // SAFETY: len > 0 (block sizes are >= 4 KiB) and the layout is valid.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        Aligned { ptr, len }
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: ptr points to len initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, ALIGN).expect("valid layout");
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) }
    }
}

struct State {
    file: File,
    block: usize,
    generation: Vec<u32>,
    writes: u64,
    bytes: u64,
}

impl State {
    fn write(&mut self, buf: &mut Aligned, index: usize) -> std::io::Result<()> {
        let g = self.generation[index].wrapping_add(1).max(1);
        render_block(buf.bytes(), index as u64, g);
        self.file
            .write_all_at(buf.bytes(), (index * self.block) as u64)?;
        self.generation[index] = g;
        self.writes += 1;
        self.bytes += self.block as u64;
        Ok(())
    }
}

/// A running (or stopped) disk workload.
pub struct DiskWorkload {
    state: Arc<Mutex<State>>,
    worker: Worker,
    /// First error the writer hit, if any.
    error: Arc<Mutex<Option<String>>>,
}

impl DiskWorkload {
    /// Open the device, write the fill, then keep writing at the rate.
    pub fn start(req: &DiskRequest) -> std::io::Result<DiskWorkload> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&req.device)?;
        let size = file.seek(SeekFrom::End(0))?;
        let block = req.block_size as usize;
        let blocks = (size / req.block_size) as usize;
        if blocks == 0 || !block.is_multiple_of(ALIGN) {
            return Err(std::io::Error::other(format!(
                "{}: {size} bytes cannot hold {block}-byte blocks",
                req.device
            )));
        }
        let mut state = State {
            file,
            block,
            generation: vec![0; blocks],
            writes: 0,
            bytes: 0,
        };
        let mut buf = Aligned::new(block);
        let base_blocks = ((req.base / req.block_size) as usize).min(blocks);
        for g in &mut state.generation[..base_blocks] {
            *g = BASE_GENERATION;
        }
        let fill_blocks = ((req.fill / req.block_size) as usize).min(blocks);
        for i in 0..fill_blocks {
            state.write(&mut buf, (base_blocks + i) % blocks)?;
        }
        let state = Arc::new(Mutex::new(state));
        let error = Arc::new(Mutex::new(None));
        let worker = {
            let (state, error) = (state.clone(), error.clone());
            let per_tick = req.rate as f64 * TICK.as_secs_f64() / req.block_size as f64;
            let random = req.random;
            Worker::spawn(req.rate > 0, move |stop| {
                let mut pace = Pacer::new(per_tick);
                let mut next = (base_blocks + fill_blocks) % blocks;
                let mut rng = 0x2545_f491_4f6c_dd1du64;
                let mut tick = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..pace.due() {
                        let index = if random {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            (rng % blocks as u64) as usize
                        } else {
                            let i = next;
                            next = (next + 1) % blocks;
                            i
                        };
                        if let Err(e) = state.lock().unwrap().write(&mut buf, index) {
                            error.lock().unwrap().get_or_insert(e.to_string());
                            return;
                        }
                    }
                    tick += TICK;
                    let now = Instant::now();
                    if tick > now {
                        std::thread::sleep(tick - now);
                    } else {
                        tick = now;
                    }
                }
            })
        };
        Ok(DiskWorkload {
            state,
            worker,
            error,
        })
    }

    /// Stop writing.
    pub fn stop(&mut self) {
        self.worker.stop();
    }

    /// Read back every written block (O_DIRECT) and check it.
    pub fn verify(&mut self) -> std::io::Result<DiskVerdict> {
        self.stop();
        if let Some(e) = self.error.lock().unwrap().clone() {
            return Err(std::io::Error::other(format!("disk writer failed: {e}")));
        }
        let st = self.state.lock().unwrap();
        let mut buf = Aligned::new(st.block);
        let mut verdict = DiskVerdict {
            blocks: 0,
            bad_blocks: 0,
            bytes_written: st.bytes,
        };
        for (i, &g) in st.generation.iter().enumerate() {
            if g == 0 {
                continue;
            }
            verdict.blocks += 1;
            st.file.read_exact_at(buf.bytes(), (i * st.block) as u64)?;
            if !block_intact(buf.bytes(), i as u64, g) {
                verdict.bad_blocks += 1;
            }
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_on_a_file_writes_fill_and_rate_and_verifies() {
        // O_DIRECT works on regular files of most filesystems; tmpfs refuses
        // it, so use the target dir's filesystem.
        let dir = std::env::temp_dir().join(format!("migbench-disk-test-{}", std::process::id()));
        let path = dir.with_extension("img");
        let f = File::create(&path).unwrap();
        f.set_len(4 << 20).unwrap();
        drop(f);
        let req = DiskRequest {
            device: path.to_string_lossy().into(),
            rate: 2 << 20,
            block_size: 64 << 10,
            random: true,
            fill: 1 << 20,
            base: 0,
        };
        let mut w = match DiskWorkload::start(&req) {
            Ok(w) => w,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return, // no O_DIRECT here
            Err(e) => panic!("{e}"),
        };
        std::thread::sleep(Duration::from_millis(350));
        let v = w.verify().unwrap();
        assert!(v.blocks >= 16, "{v:?}");
        assert_eq!(v.bad_blocks, 0);
        // Corrupt one written block behind the workload's back.
        let raw = OpenOptions::new().write(true).open(&path).unwrap();
        raw.write_all_at(&[0xff; 16], 100).unwrap();
        raw.sync_all().unwrap();
        assert_eq!(w.verify().unwrap().bad_blocks, 1);
        let _ = std::fs::remove_file(&path);
    }
}
