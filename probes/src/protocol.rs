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
        disk: Option<crate::disk::DiskRequest>,
    },
    /// Stop rewriting memory (the written pages stay for verification).
    Stop,
    /// Return and forget the samples collected so far.
    Samples,
    /// Check every page written so far.
    Verify,
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
        disk: Option<crate::disk::DiskVerdict>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trips_and_rejects_foreign_packets() {
        let b = encode_probe(42, 123_456_789);
        assert_eq!(decode_probe(&b), Some((42, 123_456_789)));
        assert_eq!(decode_probe(&b[..10]), None);
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
