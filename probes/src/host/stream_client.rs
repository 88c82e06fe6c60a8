//! The viewer of the guest's TCP stream: connects from the client
//! namespace, asks the agent for a bitrate ([`StreamHello`]) and records
//! every chunk's arrival (kernel receive timestamps, as the prober) with
//! the guest's send stamp and retransmit counters from its header.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use migbench_model::StreamChunk;

use crate::clock::Origin;
use crate::host::netns::in_netns;
use crate::host::prober::{only_waiting, realtime_thread, recv_stamped, stop_and_join};
use crate::protocol::{ChunkHeader, StreamHello, CHUNK_HEADER_LEN};

/// Chunks are sized to leave the guest every 10 ms.
pub const CHUNK_INTERVAL: Duration = Duration::from_millis(10);

/// What the viewer received, and why it stopped early if it did.
#[derive(Debug, Default)]
pub struct Received {
    /// Every chunk, in arrival order.
    pub chunks: Vec<StreamChunk>,
    /// The connection closed or failed before the viewer stopped.
    pub error: Option<String>,
}

/// A running viewer.
pub struct StreamClient {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Received>>,
}

/// The chunk size for `bitrate_bps` (one chunk per [`CHUNK_INTERVAL`]).
pub fn chunk_size(bitrate_bps: u64) -> u32 {
    let bytes = bitrate_bps as f64 / 8.0 * CHUNK_INTERVAL.as_secs_f64();
    (bytes.round() as u32).max(CHUNK_HEADER_LEN as u32)
}

impl StreamClient {
    /// Connect to the agent's stream at `addr` from namespace `netns` and
    /// start receiving `bitrate_bps`; times are ms since `origin` (as
    /// [`crate::host::prober::Prober::start`]).
    pub fn start(
        netns: Option<&str>,
        addr: SocketAddr,
        bitrate_bps: u64,
        origin: impl Into<Origin>,
    ) -> std::io::Result<StreamClient> {
        let origin: Origin = origin.into();
        let sock = in_netns(netns, || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })?;
        let hello = StreamHello {
            bitrate: bitrate_bps,
            chunk: chunk_size(bitrate_bps),
        };
        std::io::Write::write_all(&mut &sock, &hello.encode())?;
        sock.set_read_timeout(Some(Duration::from_millis(20)))?;
        let stamps = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        )
        .is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let chunk = hello.chunk as usize;
        let thread = realtime_thread("stream-recv", move || {
            let mut out = Received::default();
            let mut pending: Vec<u8> = Vec::with_capacity(chunk * 4);
            let mut buf = vec![0u8; 64 << 10];
            while !flag.load(Ordering::Relaxed) {
                let (n, stamp) = match recv_stamped(&sock, &mut buf, stamps) {
                    Ok((0, _)) => {
                        out.error = Some("the guest closed the stream".into());
                        break;
                    }
                    Ok(r) => r,
                    Err(e) if only_waiting(e) => continue,
                    Err(e) => {
                        out.error = Some(format!("the stream failed: {e}"));
                        break;
                    }
                };
                let t = match stamp {
                    Some(rt) => origin.since_stamp_ns(rt),
                    None => origin.elapsed_ns(),
                };
                pending.extend_from_slice(&buf[..n]);
                let whole = pending.len() / chunk * chunk;
                for c in pending[..whole].chunks_exact(chunk) {
                    let Some(h) = ChunkHeader::decode(c) else {
                        continue;
                    };
                    out.chunks.push(StreamChunk {
                        seq: h.seq,
                        bytes: chunk as u64,
                        sent_guest_ms: h.sent_ns as f64 / 1e6,
                        recv_ms: t as f64 / 1e6,
                        retrans: h.retrans,
                        backoff: h.backoff,
                    });
                }
                pending.drain(..whole);
            }
            out
        })?;
        Ok(StreamClient {
            stop,
            thread: Some(thread),
        })
    }

    /// Stop and return what arrived.
    pub fn finish(mut self) -> Received {
        stop_and_join(&self.stop, &mut self.thread)
    }
}

impl Drop for StreamClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_viewer_of_a_local_stream_receives_every_chunk_in_order() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let origin = Instant::now();
        std::thread::spawn(move || {
            crate::guest::serve::serve_stream(l.accept().unwrap().0, origin)
        });
        let v = StreamClient::start(None, addr, 1_000_000, origin).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let r = v.finish();
        assert!(r.error.is_none(), "{:?}", r.error);
        assert!(r.chunks.len() >= 20, "{}", r.chunks.len());
        assert!(r.chunks.iter().enumerate().all(|(i, c)| c.seq == i as u64));
        assert!(r.chunks.iter().all(|c| c.bytes == 1250));
        assert!(r.chunks.windows(2).all(|w| w[1].recv_ms >= w[0].recv_ms));
    }
}
