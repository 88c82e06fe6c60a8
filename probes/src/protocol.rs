//! Wire formats between the host and the guest agent: the UDP probe packet
//! echoed verbatim, and the JSON-lines control protocol on TCP.
//! Both sides of these formats live here so they cannot drift apart.

use serde::{Deserialize, Serialize};

/// UDP port the agent echoes probe packets on.
pub const ECHO_PORT: u16 = 7;
/// TCP port of the agent's control protocol.
pub const CONTROL_PORT: u16 = 7100;
/// Size of one probe packet.
pub const PROBE_LEN: usize = 16;
/// TCP port of the agent's constant-bitrate stream (service `tcp-stream`).
pub const STREAM_PORT: u16 = 7101;
/// TCP port of the agent's request/response echo (service `tcp-rr`).
pub const RR_PORT: u16 = 7102;
/// Bytes at the head of each stream chunk ([`ChunkHeader`]).
pub const CHUNK_HEADER_LEN: usize = 21;

/// What a stream client asks for when it connects: bits per second and
/// the chunk size (12 bytes, little endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHello {
    /// Bitrate, bit/s.
    pub bitrate: u64,
    /// Chunk size, bytes (at least [`CHUNK_HEADER_LEN`]).
    pub chunk: u32,
}

impl StreamHello {
    /// The wire form.
    pub fn encode(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.bitrate.to_le_bytes());
        b[8..].copy_from_slice(&self.chunk.to_le_bytes());
        b
    }

    /// Parse; `None` when the request is one the server refuses (a rate
    /// of 0, above 1 Gbit/s, or chunks outside header size – 1 MiB).
    pub fn decode(b: &[u8; 12]) -> Option<StreamHello> {
        let h = StreamHello {
            bitrate: u64::from_le_bytes(b[..8].try_into().ok()?),
            chunk: u32::from_le_bytes(b[8..].try_into().ok()?),
        };
        let ok = (1..=1_000_000_000).contains(&h.bitrate)
            && (CHUNK_HEADER_LEN as u32..=1 << 20).contains(&h.chunk);
        ok.then_some(h)
    }
}

/// The head of one stream chunk: its number, when the guest sent it and
/// what the guest's TCP had retransmitted by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Sequence number from 0.
    pub seq: u64,
    /// Guest monotonic ns since the agent started.
    pub sent_ns: u64,
    /// The sending socket's `tcpi_total_retrans`.
    pub retrans: u32,
    /// The sending socket's `tcpi_backoff`.
    pub backoff: u8,
}

impl ChunkHeader {
    /// The wire form.
    pub fn encode(self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.sent_ns.to_le_bytes());
        b[16..20].copy_from_slice(&self.retrans.to_le_bytes());
        b[20] = self.backoff;
        b
    }

    /// Parse the head of a chunk.
    pub fn decode(b: &[u8]) -> Option<ChunkHeader> {
        let b = b.get(..CHUNK_HEADER_LEN)?;
        Some(ChunkHeader {
            seq: u64::from_le_bytes(b[..8].try_into().ok()?),
            sent_ns: u64::from_le_bytes(b[8..16].try_into().ok()?),
            retrans: u32::from_le_bytes(b[16..20].try_into().ok()?),
            backoff: b[20],
        })
    }
}

/// Encode a probe: sequence number and send time (ns since the prober's origin).
pub fn encode_probe(seq: u64, sent_ns: u64) -> [u8; PROBE_LEN] {
    let mut b = [0u8; PROBE_LEN];
    b[..8].copy_from_slice(&seq.to_le_bytes());
    b[8..].copy_from_slice(&sent_ns.to_le_bytes());
    b
}

/// Decode a probe reply; `None` if it is not one of ours.
pub fn decode_probe(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() != PROBE_LEN {
        return None;
    }
    let seq = u64::from_le_bytes(b[..8].try_into().ok()?);
    let sent = u64::from_le_bytes(b[8..].try_into().ok()?);
    Some((seq, sent))
}

/// A request from the host to the agent (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Liveness check; answers [`Response::Pong`].
    Ping,
    /// Fill the working set once, then rewrite it at `rate` bytes/s (0 = fill only).
    Start {
        /// Target dirty rate, bytes per second.
        rate: u64,
        /// Working set, bytes.
        working_set: u64,
        /// Share of each page (0–1) that is a fixed, compressible filler.
        #[serde(default, skip_serializing_if = "is_zero")]
        compressible: f64,
        /// Disk workload, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disk: Option<DiskRequest>,
    },
    /// Stop rewriting memory (the written pages stay for verification).
    Stop,
    /// The samples that ended after `after_ms` (guest monotonic ms). The
    /// agent keeps them, so a reply lost on the way (a throttled guest
    /// answering after the host gave up) loses nothing: the next request
    /// asks from the same point.
    Samples {
        /// End of the last sample the host has (0, the default: all).
        #[serde(default)]
        after_ms: f64,
    },
    /// Check every page written so far.
    Verify,
    /// Hang the echo and the memory workload for `ms` (the `agent-stall`
    /// fault); answered at once.
    Stall {
        /// How long, ms.
        ms: u64,
    },
}

/// The longest `stall` the agent accepts (the agent-stall fault's are
/// seconds).
pub const MAX_STALL_MS: u64 = 600_000;

impl Request {
    /// Why the agent must refuse this request, if it must: a working set
    /// beyond the guest's memory `mem_total()` (read only for a start;
    /// allocating it would abort
    /// the agent), a compressible share outside 0–1, a stall beyond
    /// [`MAX_STALL_MS`]. Parsing accepts any number; this says what makes
    /// sense.
    pub fn refusal(&self, mem_total: impl FnOnce() -> Option<u64>) -> Option<String> {
        match self {
            Request::Start {
                working_set,
                compressible,
                ..
            } => {
                if !(0.0..=1.0).contains(compressible) {
                    return Some(format!(
                        "compressible {compressible} is outside 0 – 1 (a share of each page)"
                    ));
                }
                match mem_total() {
                    Some(total) if *working_set > total => Some(format!(
                        "working set {working_set} bytes is more than the guest's {total} bytes of memory"
                    )),
                    _ => None,
                }
            }
            Request::Stall { ms } if *ms > MAX_STALL_MS => Some(format!(
                "stall of {ms} ms is longer than the {MAX_STALL_MS} ms allowed"
            )),
            _ => None,
        }
    }
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    /// Answer to ping: the guest's monotonic clock, ms.
    Pong {
        /// Guest monotonic time, ms (stops while the VM is paused).
        now_ms: f64,
    },
    /// The request was carried out.
    Done,
    /// Workload samples, oldest first.
    Samples {
        /// Guest monotonic time when the reply was made, ms.
        now_ms: f64,
        /// The samples.
        samples: Vec<GuestSample>,
    },
    /// Verification verdict.
    Verified {
        /// Pages checked.
        pages: u64,
        /// Pages whose content was not what the dirtier wrote.
        bad_pages: u64,
        /// Generations written in total (fill + rewrites), for the record.
        writes: u64,
        /// Disk verdict, when a disk workload ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disk: Option<DiskVerdict>,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// One workload window as the guest measured it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GuestSample {
    /// Guest monotonic time at the end of the window, ms.
    pub end_ms: f64,
    /// Window length, ms.
    pub window_ms: f64,
    /// Bytes written in the window.
    pub bytes: u64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// What the host asks the disk workload to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskRequest {
    /// Block device path, e.g. `/dev/vda`.
    pub device: String,
    /// Bytes per second after the fill (0 = fill only).
    pub rate: u64,
    /// Bytes per write (multiple of 4 KiB).
    pub block_size: u64,
    /// Random rather than sequential block order.
    pub random: bool,
    /// Bytes written before the rate phase (after the base data).
    pub fill: u64,
    /// Bytes of base data at the start of the disk that the host wrote
    /// with `migbench_pure::tags::render_block` at its base generation
    /// (verified too).
    #[serde(default)]
    pub base: u64,
}

/// Verification verdict of the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskVerdict {
    /// Blocks that were written and checked.
    pub blocks: u64,
    /// Blocks that did not read back as written.
    pub bad_blocks: u64,
    /// Bytes written in total.
    pub bytes_written: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_that_would_abort_or_hang_the_agent_are_refused() {
        let start = |ws: u64, c: f64| Request::Start {
            rate: 1,
            working_set: ws,
            compressible: c,
            disk: None,
        };
        let mem = || Some(256u64 << 20);
        assert_eq!(start(64 << 20, 0.5).refusal(mem), None);
        let big = start(u64::MAX, 0.0).refusal(mem).unwrap();
        assert!(
            big.contains("more than the guest's 268435456 bytes"),
            "{big}"
        );
        assert!(start(1, f64::NAN)
            .refusal(mem)
            .unwrap()
            .contains("outside 0 – 1"));
        assert!(start(1, -0.5).refusal(|| None).is_some());
        assert_eq!(
            start(u64::MAX, 0.0).refusal(|| None),
            None,
            "no meminfo: no check"
        );
        let unread = || -> Option<u64> { panic!("meminfo read for a request other than start") };
        assert_eq!(Request::Ping.refusal(unread), None);
        assert!(Request::Stall { ms: u64::MAX }.refusal(mem).is_some());
        assert_eq!(Request::Stall { ms: 3000 }.refusal(mem), None);
        assert_eq!(Request::Ping.refusal(mem), None);
    }

    #[test]
    fn probe_round_trips_and_rejects_foreign_packets() {
        let b = encode_probe(42, 123_456_789);
        assert_eq!(decode_probe(&b), Some((42, 123_456_789)));
        assert_eq!(decode_probe(&b[..10]), None);
    }

    #[test]
    fn stream_hello_and_chunk_headers_round_trip_and_bad_hellos_are_refused() {
        let h = StreamHello {
            bitrate: 5_000_000,
            chunk: 6250,
        };
        assert_eq!(StreamHello::decode(&h.encode()), Some(h));
        let zero = StreamHello { bitrate: 0, ..h };
        assert_eq!(StreamHello::decode(&zero.encode()), None);
        let tiny = StreamHello { chunk: 8, ..h };
        assert_eq!(StreamHello::decode(&tiny.encode()), None);
        let c = ChunkHeader {
            seq: 7,
            sent_ns: 1 << 40,
            retrans: 3,
            backoff: 2,
        };
        assert_eq!(ChunkHeader::decode(&c.encode()), Some(c));
        assert_eq!(ChunkHeader::decode(&c.encode()[..20]), None);
    }

    #[test]
    fn control_messages_are_tagged_json() {
        let s = serde_json::to_string(&Request::Start {
            rate: 5,
            working_set: 4096,
            compressible: 0.0,
            disk: None,
        })
        .unwrap();
        assert_eq!(s, r#"{"cmd":"start","rate":5,"working_set":4096}"#);
        let r: Response =
            serde_json::from_str(r#"{"reply":"verified","pages":3,"bad_pages":0,"writes":9}"#)
                .unwrap();
        assert_eq!(
            r,
            Response::Verified {
                pages: 3,
                bad_pages: 0,
                writes: 9,
                disk: None,
            }
        );
    }
}
