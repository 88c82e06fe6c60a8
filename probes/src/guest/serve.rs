//! The guest side of the services a client uses during migration, run by
//! the agent: a constant-bitrate TCP stream ([`serve_stream`]: chunks with
//! sequence numbers, send stamps and the socket's retransmit counters)
//! and a request/response echo ([`serve_rr`]). One thread per connection;
//! a connection ends when its client goes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::protocol::{ChunkHeader, StreamHello, RR_PORT, STREAM_PORT};
use crate::tcpinfo::retransmits;

/// Listen for stream and request/response clients on their ports, each
/// connection on its own thread. Times are measured from `origin`.
pub fn start(origin: Instant) -> std::io::Result<()> {
    let stream = TcpListener::bind(("0.0.0.0", STREAM_PORT))?;
    let rr = TcpListener::bind(("0.0.0.0", RR_PORT))?;
    accept_each(stream, move |c| serve_stream(c, origin));
    accept_each(rr, serve_rr);
    Ok(())
}

/// Serve every connection of `l` on its own thread.
fn accept_each(
    l: TcpListener,
    serve: impl Fn(TcpStream) -> std::io::Result<()> + Send + Copy + 'static,
) {
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                // A client that goes away ends its connection: nothing to report.
                let _ = serve(conn);
            });
        }
    });
}

/// Read the client's [`StreamHello`], then send chunks at its bitrate
/// until it goes. Chunks are due on a fixed schedule from the first: a
/// sender held up (a full socket buffer) catches up, as a live source's
/// backlog would.
pub fn serve_stream(mut c: TcpStream, origin: Instant) -> std::io::Result<()> {
    let mut hello = [0u8; 12];
    c.read_exact(&mut hello)?;
    let Some(h) = StreamHello::decode(&hello) else {
        return Err(std::io::Error::other("refused stream request"));
    };
    c.set_nodelay(true)?;
    let interval = Duration::from_secs_f64(f64::from(h.chunk) * 8.0 / h.bitrate as f64);
    let mut chunk = vec![0u8; h.chunk as usize];
    let start = Instant::now();
    for seq in 0u64.. {
        let due = start + interval.mul_f64(seq as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let r = retransmits(&c).unwrap_or_default();
        let head = ChunkHeader {
            seq,
            sent_ns: origin.elapsed().as_nanos() as u64,
            retrans: r.total,
            backoff: r.backoff,
        };
        chunk[..head.encode().len()].copy_from_slice(&head.encode());
        c.write_all(&chunk)?;
    }
    Ok(())
}

/// Read the request size (4 bytes, little endian), then answer each
/// request of that size with itself.
pub fn serve_rr(mut c: TcpStream) -> std::io::Result<()> {
    let mut size = [0u8; 4];
    c.read_exact(&mut size)?;
    let size = u32::from_le_bytes(size) as usize;
    if !(16..=1 << 20).contains(&size) {
        return Err(std::io::Error::other("refused request size"));
    }
    c.set_nodelay(true)?;
    let mut req = vec![0u8; size];
    loop {
        c.read_exact(&mut req)?;
        c.write_all(&req)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::CHUNK_HEADER_LEN;

    fn local(serve: fn(TcpStream) -> std::io::Result<()>) -> TcpStream {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || serve(l.accept().unwrap().0));
        TcpStream::connect(addr).unwrap()
    }

    #[test]
    fn the_stream_sends_numbered_chunks_at_the_asked_rate() {
        let mut c = local(|c| serve_stream(c, Instant::now()));
        // 800 kbit/s in 1000-byte chunks: one every 10 ms.
        let hello = StreamHello {
            bitrate: 800_000,
            chunk: 1000,
        };
        c.write_all(&hello.encode()).unwrap();
        let t0 = Instant::now();
        let mut buf = vec![0u8; 1000];
        for want in 0..20u64 {
            c.read_exact(&mut buf).unwrap();
            let h = ChunkHeader::decode(&buf[..CHUNK_HEADER_LEN]).unwrap();
            assert_eq!(h.seq, want);
        }
        // 20 chunks are 190 ms of schedule after the first.
        assert!(
            t0.elapsed() >= Duration::from_millis(180),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn the_echo_answers_each_request_with_itself_and_refuses_odd_sizes() {
        let mut c = local(serve_rr);
        c.write_all(&64u32.to_le_bytes()).unwrap();
        for i in 0..5u8 {
            let req = [i; 64];
            c.write_all(&req).unwrap();
            let mut resp = [0u8; 64];
            c.read_exact(&mut resp).unwrap();
            assert_eq!(resp, req);
        }
        let mut bad = local(serve_rr);
        bad.write_all(&3u32.to_le_bytes()).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(bad.read(&mut b).unwrap_or(0), 0, "closed without an answer");
    }
}
