//! The clients of the guest's services during a run (`[service] kind`):
//! starting them from the client namespace ([`ServiceClients::start`]),
//! collecting and writing what they saw ([`ServiceSeries`], raw files under
//! `service/`), and the pure summary into the record ([`summarise`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use migbench_model::settings::Services;
use migbench_model::{ProbeEvent, RunParams, RunRecord};
use migbench_probes::clock::Origin;
use migbench_probes::host::prober::{ProbeTarget, Probed, Prober};
use migbench_probes::host::stream_client::{Received, StreamClient};
use migbench_probes::protocol::{RR_PORT, STREAM_PORT};
use migbench_probes::tcpinfo::Retransmits;
use migbench_pure::outage::switchover_outage_ms;
use migbench_pure::service::{rr_summary, stream_summary};

use crate::control::Cancel;
use crate::migrate::guest::sleep_or_cancel;

/// The service clients of one run.
#[derive(Default)]
pub struct ServiceClients {
    icmp: Option<Prober>,
    stream: Option<StreamClient>,
    rr: Option<Prober>,
}

/// What the service clients saw.
#[derive(Debug, Default)]
pub struct ServiceSeries {
    /// ICMP echo events (service `icmp`).
    pub icmp: Option<Vec<ProbeEvent>>,
    /// The stream (service `tcp-stream`).
    pub stream: Option<Received>,
    /// Requests (service `tcp-rr`).
    pub rr: Option<Probed>,
}

impl ServiceClients {
    /// Start the services `p` asks for against the guest at `ip` from
    /// namespace `netns`. The stream starts first and runs until the
    /// largest of `buffers` could have filled, so every playout starts
    /// before the migration does. A service that cannot start fails the
    /// run with the reason.
    pub async fn start(
        p: &RunParams,
        buffers: &[Duration],
        netns: Option<String>,
        ip: Ipv4Addr,
        origin: Origin,
        cancel: &Cancel,
    ) -> Result<ServiceClients> {
        let s = p.services;
        let mut c = ServiceClients::default();
        if s.has(Services::TCP_STREAM) {
            let (ns, rate) = (netns.clone(), p.stream_rate.0);
            let addr = SocketAddr::from((ip, STREAM_PORT));
            c.stream = Some(
                tokio::task::spawn_blocking(move || {
                    StreamClient::start(ns.as_deref(), addr, rate, origin)
                })
                .await?
                .with_context(|| format!("starting the tcp-stream service ({addr})"))?,
            );
            let fill = buffers.iter().max().copied().unwrap_or_default();
            sleep_or_cancel(fill + Duration::from_millis(500), cancel).await?;
        }
        if s.has(Services::TCP_RR) {
            let target = ProbeTarget::TcpRr {
                addr: SocketAddr::from((ip, RR_PORT)),
                size: p.rr_size.0 as u32,
            };
            let every = Duration::from_secs_f64(1.0 / f64::from(p.rr_rate.0));
            let ns = netns.clone();
            c.rr = Some(
                tokio::task::spawn_blocking(move || {
                    Prober::start(ns.as_deref(), target, every, origin)
                })
                .await?
                .context("starting the tcp-rr service")?,
            );
        }
        if s.has(Services::ICMP) {
            let every = p.probe_interval.0;
            c.icmp = Some(
                Prober::start(netns.as_deref(), ProbeTarget::Icmp(ip), every, origin)
                    .context("starting the icmp service (raw ICMP socket)")?,
            );
        }
        Ok(c)
    }

    /// Stop every client (waiting `grace` for late replies) and collect.
    pub fn finish(self, grace: Duration) -> ServiceSeries {
        // The probers wait their grace in parallel.
        std::thread::scope(|sc| {
            let icmp = self.icmp.map(|p| sc.spawn(move || p.finish(grace)));
            let rr = self.rr.map(|p| sc.spawn(move || p.finish_all(grace)));
            ServiceSeries {
                stream: self.stream.map(StreamClient::finish),
                icmp: icmp.map(|h| h.join().unwrap_or_default()),
                rr: rr.map(|h| h.join().unwrap_or_default()),
            }
        })
    }
}

/// What the raw CSVs do not hold: the TCP counters and errors.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Ends {
    rr_retransmits: Option<u32>,
    rr_max_backoff: Option<u8>,
    rr_error: Option<String>,
    stream_error: Option<String>,
}

impl ServiceSeries {
    /// Read what [`ServiceSeries::write`] wrote (nothing when the run had
    /// no services).
    pub fn read(raw: &Path) -> Result<ServiceSeries> {
        let dir = raw.join("service");
        let text = |name: &str| -> Result<Option<String>> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
            }
        };
        let bad = |name: &str, e: String| anyhow::anyhow!("{}: {e}", dir.join(name).display());
        let ends: Ends = match text("ends.json")? {
            Some(t) => serde_json::from_str(&t).map_err(|e| bad("ends.json", e.to_string()))?,
            None => Ends::default(),
        };
        let probes = |name: &str| -> Result<Option<Vec<ProbeEvent>>> {
            text(name)?
                .map(|t| migbench_model::record::read_probes_csv(&t).map_err(|e| bad(name, e)))
                .transpose()
        };
        let stream = text("stream.csv")?
            .map(|t| migbench_model::series::read_stream_csv(&t).map_err(|e| bad("stream.csv", e)))
            .transpose()?;
        Ok(ServiceSeries {
            icmp: probes("icmp.csv")?,
            stream: stream.map(|chunks| Received {
                chunks,
                error: ends.stream_error,
            }),
            rr: probes("rr.csv")?.map(|events| Probed {
                events,
                retransmits: ends.rr_retransmits.map(|total| Retransmits {
                    total,
                    backoff: ends.rr_max_backoff.unwrap_or(0),
                }),
                error: ends.rr_error,
            }),
        })
    }

    /// Write the raw series under `raw/service/`.
    pub fn write(&self, raw: &Path) -> std::io::Result<()> {
        if self.icmp.is_none() && self.stream.is_none() && self.rr.is_none() {
            return Ok(());
        }
        let dir = raw.join("service");
        std::fs::create_dir_all(&dir)?;
        use crate::recorder::write_atomic;
        use migbench_model::record::write_probes_csv;
        if let Some(e) = &self.icmp {
            write_atomic(&dir.join("icmp.csv"), |w| write_probes_csv(w, e))?;
        }
        if let Some(r) = &self.rr {
            write_atomic(&dir.join("rr.csv"), |w| write_probes_csv(w, &r.events))?;
        }
        if let Some(s) = &self.stream {
            write_atomic(&dir.join("stream.csv"), |w| {
                migbench_model::series::write_stream_csv(w, &s.chunks)
            })?;
        }
        let ends = Ends {
            rr_retransmits: self
                .rr
                .as_ref()
                .and_then(|r| r.retransmits)
                .map(|t| t.total),
            rr_max_backoff: self
                .rr
                .as_ref()
                .and_then(|r| r.retransmits)
                .map(|t| t.backoff),
            rr_error: self.rr.as_ref().and_then(|r| r.error.clone()),
            stream_error: self.stream.as_ref().and_then(|s| s.error.clone()),
        };
        crate::recorder::write_json(&dir.join("ends.json"), &ends)
    }
}

/// Fill the record's service fields from what the clients saw, for a
/// migration over `[t0, t1]` ms that switched over (`switched`).
pub fn summarise(
    rec: &mut RunRecord,
    p: &RunParams,
    buffers: &[Duration],
    s: &ServiceSeries,
    window: Option<(f64, f64, bool)>,
) {
    let (t0, t1, switched) = window.unwrap_or((f64::INFINITY, f64::INFINITY, false));
    let completed = switched.then_some(t1);
    if let (Some(e), Some(at)) = (&s.icmp, completed) {
        rec.downtime_icmp_ms = switchover_outage_ms(e, p.probe_interval.ms(), at);
    }
    if let Some(st) = &s.stream {
        let buffers: Vec<f64> = buffers.iter().map(|b| b.as_secs_f64() * 1e3).collect();
        let mut sum = stream_summary(&st.chunks, p.stream_rate.0 as f64, &buffers, completed);
        sum.error = st.error.clone();
        rec.stream = Some(sum);
    }
    if let Some(r) = &s.rr {
        let every = 1e3 / f64::from(p.rr_rate.0.max(1));
        let mut sum = rr_summary(&r.events, (t0, t1, switched), every, p.rr_deadline.ms());
        if let Some(t) = r.retransmits {
            sum.retransmits = u64::from(t.total);
            sum.max_backoff = u32::from(t.backoff);
        }
        sum.error = r.error.clone();
        rec.rr = Some(sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_that_cannot_start_fails_with_its_name_and_address() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let p = RunParams {
            services: Services::TCP_STREAM,
            ..RunParams::default()
        };
        // Nothing serves the stream port on this address.
        let ip = Ipv4Addr::new(127, 0, 0, 9);
        let err = rt
            .block_on(ServiceClients::start(
                &p,
                &[],
                None,
                ip,
                Origin::now(),
                &Cancel::default(),
            ))
            .err()
            .expect("no stream to connect to");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("tcp-stream") && msg.contains("127.0.0.9:7101"),
            "{msg}"
        );
    }

    #[test]
    fn service_series_round_trip_through_their_raw_files() {
        let dir = tempfile::tempdir().unwrap();
        let ev = vec![ProbeEvent {
            seq: 0,
            sent_ms: 1.0,
            recv_ms: Some(2.5),
        }];
        let s = ServiceSeries {
            icmp: Some(ev.clone()),
            stream: Some(Received {
                chunks: vec![migbench_model::StreamChunk {
                    seq: 0,
                    bytes: 6250,
                    sent_guest_ms: 3.0,
                    recv_ms: 4.0,
                    retrans: 1,
                    backoff: 0,
                }],
                error: Some("the guest closed the stream".into()),
            }),
            rr: Some(Probed {
                events: ev.clone(),
                retransmits: Some(Retransmits {
                    total: 7,
                    backoff: 2,
                }),
                error: None,
            }),
        };
        s.write(dir.path()).unwrap();
        let back = ServiceSeries::read(dir.path()).unwrap();
        assert_eq!(back.icmp, Some(ev.clone()));
        let st = back.stream.unwrap();
        assert_eq!(
            (st.chunks.len(), st.error.as_deref()),
            (1, Some("the guest closed the stream"))
        );
        let rr = back.rr.unwrap();
        assert_eq!(
            rr.retransmits,
            Some(Retransmits {
                total: 7,
                backoff: 2
            })
        );
        assert!(ServiceSeries::read(&dir.path().join("none"))
            .unwrap()
            .icmp
            .is_none());
    }
}
