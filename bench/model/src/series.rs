//! The raw per-run series a run leaves beside its record: progress
//! samples (`progress.jsonl`), migration events (`events.jsonl`), probe
//! events (`probes.csv`, and `service/icmp.csv`, `service/rr.csv` in the
//! same format), stream chunks (`service/stream.csv`) and workload samples
//! (`workload.jsonl`). Other
//! tools parse these: change them with care.

use serde::{Deserialize, Serialize};

/// XBZRLE cache statistics (`xbzrle-cache` in `query-migrate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct XbzrleStats {
    /// Bytes sent as XBZRLE deltas.
    pub bytes: u64,
    /// Pages sent as deltas.
    pub pages: u64,
    /// Pages not found in the cache.
    pub cache_miss: u64,
    /// Cache miss rate (0–1).
    pub cache_miss_rate: f64,
    /// Pages whose delta overflowed (sent whole).
    pub overflow: u64,
    /// Encoding rate (page bytes per delta byte).
    pub encoding_rate: f64,
}

/// One QMP migration event of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationEvent {
    /// Host time since the run's clock origin, ms.
    pub t_ms: f64,
    /// `MIGRATION_PASS`: the pass that began.
    pub pass: Option<u64>,
    /// `MIGRATION`: the state entered.
    pub status: Option<String>,
}

/// One `query-migrate` sample of `progress.jsonl`. Times are ms since the
/// run's clock origin (host monotonic clock).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressSample {
    /// Host time of the sample, ms.
    pub t_ms: f64,
    /// QEMU migration status (`setup`, `active`, `device`, `completed`, ...).
    pub status: String,
    /// `ram.transferred`.
    pub transferred: u64,
    /// `ram.remaining`.
    pub remaining: u64,
    /// `ram.total`.
    pub total: u64,
    /// `ram.dirty-sync-count`.
    pub passes: u64,
    /// `ram.duplicate`: zero pages found (sent as a marker, not as data).
    #[serde(default)]
    pub zero_pages: u64,
    /// `ram.dirty-pages-rate` in pages/s.
    pub dirty_pages_rate: u64,
    /// `ram.mbps` as QEMU reports it.
    pub mbps: f64,
    /// `expected-downtime`, ms, when QEMU reports it.
    pub expected_downtime_ms: Option<f64>,
    /// `cpu-throttle-percentage` (auto-converge), when throttling.
    #[serde(default)]
    pub throttle_pct: Option<f64>,
    /// `ram.multifd-bytes`.
    #[serde(default)]
    pub multifd_bytes: u64,
    /// `ram.normal-bytes`: whole pages sent, uncompressed size.
    #[serde(default)]
    pub normal_bytes: u64,
    /// `ram.postcopy-requests`.
    #[serde(default)]
    pub postcopy_requests: u64,
    /// `xbzrle-cache`, when XBZRLE is on.
    #[serde(default)]
    pub xbzrle: Option<XbzrleStats>,
}

/// One row of `probes.csv` (`seq,sent_ms,recv_ms`, empty `recv_ms` for a
/// lost probe): a probe and its fate. Times in ms since the run's clock
/// origin. CSV rather than JSON lines: runs hold up to millions of probes
/// and the analyzer loads them with polars' CSV reader.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeEvent {
    /// Sequence number.
    pub seq: u64,
    /// Send time, ms.
    pub sent_ms: f64,
    /// Reply arrival time, ms; `None` if no reply arrived.
    pub recv_ms: Option<f64>,
}

/// Header of `probes.csv`.
pub const PROBES_CSV_HEADER: &str = "seq,sent_ms,recv_ms";

/// Write probe events as `probes.csv`.
pub fn write_probes_csv<W: std::io::Write>(mut w: W, events: &[ProbeEvent]) -> std::io::Result<()> {
    writeln!(w, "{PROBES_CSV_HEADER}")?;
    for e in events {
        match e.recv_ms {
            Some(r) => writeln!(w, "{},{:.4},{:.4}", e.seq, e.sent_ms, r)?,
            None => writeln!(w, "{},{:.4},", e.seq, e.sent_ms)?,
        }
    }
    w.flush()
}

/// Read `probes.csv` back: the analyzer reads every run's with this
/// (100 million rows for 100,000 runs), so its numbers are parsed with
/// `fast-float2` (the parser polars uses) rather than std's
/// `f64::from_str`: with the split below, a quarter less CPU for the
/// whole summary.
/// The error names the line and quotes it.
pub fn read_probes_csv(text: &str) -> Result<Vec<ProbeEvent>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(PROBES_CSV_HEADER) {
        return Err(format!(
            "not a probes.csv: header is not `{PROBES_CSV_HEADER}`"
        ));
    }
    let mut out = Vec::with_capacity(text.len() / 24);
    for (i, l) in lines.enumerate() {
        let bad = || format!("probes.csv line {}: `{l}`", i + 2);
        // A closure, not the char ',': its searcher cost a fifth of the
        // summary's CPU on 10k runs (0.78 s against 0.64 s user).
        #[allow(clippy::manual_pattern_char_comparison)]
        let mut f = l.split(|c| c == ',');
        let seq = f.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let sent_ms = f
            .next()
            .and_then(|x| fast_float2::parse(x).ok())
            .ok_or_else(bad)?;
        let recv_ms = match f.next() {
            Some("") | None => None,
            Some(x) => Some(fast_float2::parse(x).map_err(|_| bad())?),
        };
        out.push(ProbeEvent {
            seq,
            sent_ms,
            recv_ms,
        });
    }
    Ok(out)
}

/// One line of `workload.jsonl`: the dirtier's achieved rate in a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSample {
    /// Host time the window ended (mapped from the guest clock at fetch), ms.
    pub t_ms: f64,
    /// Window length as the guest measured it, ms.
    pub window_ms: f64,
    /// Bytes written in the window.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_csv_round_trips_lost_and_answered_probes() {
        let ev = vec![
            ProbeEvent {
                seq: 0,
                sent_ms: 1.5,
                recv_ms: Some(1.75),
            },
            ProbeEvent {
                seq: 1,
                sent_ms: 2.5,
                recv_ms: None,
            },
        ];
        let mut buf = Vec::new();
        write_probes_csv(&mut buf, &ev).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "seq,sent_ms,recv_ms\n0,1.5000,1.7500\n1,2.5000,\n");
        assert_eq!(read_probes_csv(&text).unwrap(), ev);
        assert!(read_probes_csv("a,b\n").is_err());
    }
}

/// One chunk of the guest's TCP stream as the client received it
/// (`service/stream.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamChunk {
    /// Sequence number the guest gave it.
    pub seq: u64,
    /// Its length, bytes.
    pub bytes: u64,
    /// When the guest sent it, guest monotonic ms.
    pub sent_guest_ms: f64,
    /// When its last byte arrived, host ms since the run's origin.
    pub recv_ms: f64,
    /// The guest socket's `tcpi_total_retrans` when it was sent.
    pub retrans: u32,
    /// The guest socket's `tcpi_backoff` when it was sent.
    pub backoff: u8,
}

const STREAM_CSV_HEADER: &str = "seq,bytes,sent_guest_ms,recv_ms,retrans,backoff";

/// Write stream chunks as CSV.
pub fn write_stream_csv<W: std::io::Write>(
    mut w: W,
    chunks: &[StreamChunk],
) -> std::io::Result<()> {
    writeln!(w, "{STREAM_CSV_HEADER}")?;
    for c in chunks {
        writeln!(
            w,
            "{},{},{:.3},{:.3},{},{}",
            c.seq, c.bytes, c.sent_guest_ms, c.recv_ms, c.retrans, c.backoff
        )?;
    }
    w.flush()
}

/// Read what [`write_stream_csv`] wrote.
pub fn read_stream_csv(text: &str) -> Result<Vec<StreamChunk>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(STREAM_CSV_HEADER) {
        return Err(format!(
            "not a stream CSV: expected header `{STREAM_CSV_HEADER}`"
        ));
    }
    lines
        .enumerate()
        .map(|(i, l)| {
            let bad = || format!("line {}: `{l}` is not {STREAM_CSV_HEADER}", i + 2);
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 6 {
                return Err(bad());
            }
            Ok(StreamChunk {
                seq: f[0].parse().map_err(|_| bad())?,
                bytes: f[1].parse().map_err(|_| bad())?,
                sent_guest_ms: f[2].parse().map_err(|_| bad())?,
                recv_ms: f[3].parse().map_err(|_| bad())?,
                retrans: f[4].parse().map_err(|_| bad())?,
                backoff: f[5].parse().map_err(|_| bad())?,
            })
        })
        .collect()
}
