//! What a client of the guest's services sees: the services a scenario
//! runs beside the UDP probe ([`Services`], `[service] kind`) and the
//! per-run summaries of what their clients saw ([`StreamSummary`] with its
//! [`Playout`]s, [`RrSummary`] with its [`Latency`] phases), as recorded
//! in `runs.jsonl`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scalar::{string_serde, ScalarField};

/// The TCP stream a viewer received from the guest, and how it played out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Chunks received.
    pub chunks: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Bytes missing from the sequence (TCP: must be 0).
    pub lost_bytes: u64,
    /// The longest time between two chunks arriving, ms.
    pub longest_gap_ms: f64,
    /// The switchover's gap between chunks arriving (the last gap above
    /// 20 ms that began before the migration was seen complete), ms.
    #[serde(default)]
    pub switchover_gap_ms: Option<f64>,
    /// The longest time between two chunks leaving the guest (its own
    /// clock, from the chunks' send stamps), ms.
    pub longest_send_gap_ms: f64,
    /// Segments the guest's TCP retransmitted during the stream
    /// (`TCP_INFO` `tcpi_total_retrans` of the sending socket).
    pub retransmits: u64,
    /// The highest RTO backoff the guest's socket reached (`tcpi_backoff`:
    /// the retransmission timer doubled this many times).
    pub max_backoff: u32,
    /// The stream played out with each of the scenario's buffers.
    pub playout: Vec<Playout>,
    /// The connection broke (reset or closed early); the stream is cut there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StreamSummary {
    /// The playout with the smallest buffer, if any.
    pub fn tightest(&self) -> Option<&Playout> {
        self.playout
            .iter()
            .min_by(|a, b| a.buffer_ms.total_cmp(&b.buffer_ms))
    }
}

/// A viewer with a playout buffer: starts once `buffer_ms` of media is
/// buffered and, when the buffer runs dry, stalls until it holds
/// `buffer_ms` again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Playout {
    /// The buffer, ms of media.
    pub buffer_ms: f64,
    /// Time from the first byte to playback starting, ms.
    pub startup_ms: f64,
    /// Stalls (rebuffering events) of at least one frame at 50 fps (20 ms).
    pub stalls: u32,
    /// Total time stalled, ms.
    pub stall_ms: f64,
    /// The longest stall, ms.
    pub longest_stall_ms: f64,
}

/// Requests over one persistent TCP connection: how many, how late.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RrSummary {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered.
    pub answered: u64,
    /// Requests never answered (the connection failed or the run ended).
    pub failed: u64,
    /// Requests answered later than the deadline, or never.
    pub over_deadline: u64,
    /// The switchover's gap between responses arriving (the last gap above
    /// two request intervals that began before the migration was seen
    /// complete), ms.
    #[serde(default)]
    pub switchover_gap_ms: Option<f64>,
    /// Segments the client's TCP retransmitted (`tcpi_total_retrans`).
    pub retransmits: u64,
    /// The highest RTO backoff of the client's socket (`tcpi_backoff`).
    pub max_backoff: u32,
    /// Latency of requests sent before the migration, ms.
    pub before: Option<Latency>,
    /// Latency of requests sent while migrating.
    pub during: Option<Latency>,
    /// Latency of requests sent after it.
    pub after: Option<Latency>,
    /// Why the connection broke, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Request latency percentiles, ms (from an hdrhistogram).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Requests answered.
    pub n: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

/// The services a client uses during the migration (`[service] kind`),
/// beside migbench's UDP echo probe, which always runs: written as one
/// name, names joined with `+` (`"icmp+tcp-rr"`) or `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Services(u8);

impl Services {
    /// Kernel-level ICMP echo from the client namespace.
    pub const ICMP: Services = Services(1);
    /// A constant-bitrate TCP stream from the guest, played out with a buffer.
    pub const TCP_STREAM: Services = Services(2);
    /// Requests and responses over one persistent TCP connection.
    pub const TCP_RR: Services = Services(4);
    const NAMES: [(Services, &'static str); 3] = [
        (Services::ICMP, "icmp"),
        (Services::TCP_STREAM, "tcp-stream"),
        (Services::TCP_RR, "tcp-rr"),
    ];

    /// Whether every service of `s` runs.
    pub fn has(self, s: Services) -> bool {
        self.0 & s.0 == s.0
    }

    /// Whether a service needs migbench's agent in the guest.
    pub fn needs_agent(self) -> bool {
        self.0 & (Services::TCP_STREAM.0 | Services::TCP_RR.0) != 0
    }

    /// The set as a number (for chart axes).
    pub fn bits(self) -> u8 {
        self.0
    }
}

impl ScalarField for Services {
    const EXPECTING: &'static str = "\"udp\" (the probe alone), \"icmp\", \"tcp-stream\", \"tcp-rr\", several joined with + (\"icmp+tcp-rr\") or \"all\"";
    fn parse_str(s: &str) -> Result<Self, String> {
        let mut set = Services(0);
        for part in s.split('+').map(str::trim) {
            match part {
                "udp" => {}
                "all" => set.0 |= 7,
                _ => match Self::NAMES.iter().find(|(_, n)| *n == part) {
                    Some((v, _)) => set.0 |= v.0,
                    None => {
                        return Err(format!(
                            "`{part}` is not a service: expected {}",
                            Self::EXPECTING
                        ))
                    }
                },
            }
        }
        Ok(set)
    }
}

impl fmt::Display for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("udp")?;
        for (v, n) in Self::NAMES {
            if self.has(v) {
                write!(f, "+{n}")?;
            }
        }
        Ok(())
    }
}
string_serde!(Services);

#[cfg(test)]
mod service_tests {
    use super::*;

    #[test]
    fn services_parse_as_sets_and_print_back() {
        let s = Services::parse_str("tcp-rr + icmp").unwrap();
        assert!(s.has(Services::ICMP) && s.has(Services::TCP_RR));
        assert!(!s.has(Services::TCP_STREAM));
        assert_eq!(s.to_string(), "udp+icmp+tcp-rr");
        assert_eq!(Services::parse_str("udp").unwrap(), Services::default());
        assert_eq!(
            Services::parse_str("all").unwrap().to_string(),
            "udp+icmp+tcp-stream+tcp-rr"
        );
        let e = Services::parse_str("icmp+video").unwrap_err();
        assert!(e.contains("`video`") && e.contains("tcp-stream"), "{e}");
    }
}
