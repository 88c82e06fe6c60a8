//! The host-side prober: sends a numbered probe to the guest every interval
//! from a socket in the client namespace — UDP to the agent's echo port,
//! an ICMP echo request the guest's kernel answers, or a request on a TCP
//! connection the agent answers ([`ProbeTarget`]) — and
//! records every probe's send time and reply time against a shared clock
//! origin.
//!
//! Exports [`Prober`] (start, then [`Prober::finish`] for the events).

use std::io::{IoSliceMut, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use migbench_model::ProbeEvent;

use crate::clock::Origin;
use crate::host::icmp;
use crate::host::netns::in_netns;
use crate::protocol::{decode_probe, encode_probe, PROBE_LEN};
use crate::tcpinfo::{retransmits, Retransmits};

/// What the prober sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTarget {
    /// The agent's UDP echo (answered in the guest's user space).
    Udp(SocketAddr),
    /// ICMP echo (answered by the guest's kernel; any guest).
    Icmp(Ipv4Addr),
    /// Requests of `size` bytes over one TCP connection to the agent's
    /// echo ([`crate::guest::serve::serve_rr`]), each answered with itself.
    TcpRr {
        /// The agent's request/response port.
        addr: SocketAddr,
        /// Bytes per request and per response.
        size: u32,
    },
}

impl From<SocketAddr> for ProbeTarget {
    fn from(a: SocketAddr) -> Self {
        ProbeTarget::Udp(a)
    }
}

impl ProbeTarget {
    /// A connected socket for this target.
    fn socket(self) -> std::io::Result<OwnedFd> {
        match self {
            ProbeTarget::Udp(a) => {
                let s = UdpSocket::bind(("0.0.0.0", 0))?;
                s.connect(a)?;
                Ok(s.into())
            }
            ProbeTarget::Icmp(ip) => icmp::socket(ip),
            ProbeTarget::TcpRr { addr, size } => {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                s.set_nodelay(true)?;
                s.write_all(&size.to_le_bytes())?;
                Ok(s.into())
            }
        }
    }

    /// Bytes per reply on a stream transport (replies are cut from the
    /// byte stream); `None` for datagrams.
    fn frame(self) -> Option<usize> {
        match self {
            ProbeTarget::TcpRr { size, .. } => Some(size as usize),
            _ => None,
        }
    }

    /// The packet of probe `seq` sent at `t` ns (`id`: this prober's ICMP id).
    fn packet(self, id: u16, seq: u64, t: u64) -> Vec<u8> {
        match self {
            ProbeTarget::Udp(_) => encode_probe(seq, t).to_vec(),
            ProbeTarget::Icmp(_) => icmp::echo_request(id, seq, t).to_vec(),
            ProbeTarget::TcpRr { size, .. } => {
                let mut b = vec![0u8; size as usize];
                b[..PROBE_LEN].copy_from_slice(&encode_probe(seq, t));
                b
            }
        }
    }

    /// The probe a received packet answers, if it is one of ours.
    fn reply(self, id: u16, b: &[u8]) -> Option<(u64, u64)> {
        match self {
            ProbeTarget::Udp(_) => decode_probe(b),
            ProbeTarget::Icmp(_) => icmp::decode_reply(b, id),
            ProbeTarget::TcpRr { .. } => decode_probe(b.get(..PROBE_LEN)?),
        }
    }
}

/// Replies (sequence, arrival ns) and why a connection ended, if it did.
type Replies = (Vec<(u64, u64)>, Option<String>);

/// A running prober.
pub struct Prober {
    stop: Arc<AtomicBool>,
    sender: Option<JoinHandle<(Vec<u64>, Option<Retransmits>)>>,
    receiver: Option<JoinHandle<Replies>>,
    recv_stop: Arc<AtomicBool>,
    /// Probes sent so far.
    sent_count: Arc<AtomicU64>,
    /// One past the highest sequence answered so far.
    answered_to: Arc<AtomicU64>,
}

/// Everything a prober saw.
#[derive(Debug, Default)]
pub struct Probed {
    /// Every probe, answered or not.
    pub events: Vec<ProbeEvent>,
    /// TCP transports: the socket's retransmits at the end and the
    /// highest RTO backoff seen (sampled at every send).
    pub retransmits: Option<Retransmits>,
    /// TCP transports: why the connection ended early, if it did.
    pub error: Option<String>,
}

impl Prober {
    /// Start probing `target` every `interval` from namespace `netns`.
    /// All times are measured from `origin` (kernel receive timestamps
    /// from its wall-clock time: give the run's [`Origin`], not a bare
    /// instant, for times that line up with its `origin_unix`).
    pub fn start(
        netns: Option<&str>,
        target: impl Into<ProbeTarget>,
        interval: Duration,
        origin: impl Into<Origin>,
    ) -> std::io::Result<Prober> {
        let target = target.into();
        let origin: Origin = origin.into();
        let sock = UdpSocket::from(in_netns(netns, || target.socket())?);
        // (A raw ICMP socket in a UdpSocket only for its timeout and
        // send/recv calls, which are plain send(2)/recv(2).)
        sock.set_read_timeout(Some(Duration::from_millis(20)))?;
        let id = (std::process::id() as u16) ^ (origin.elapsed_ns() as u16);
        // Kernel receive timestamps: a busy host (TCG QEMU on two cores)
        // may wake the receiver late, which must not lengthen the outage.
        let kernel_stamps = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        )
        .is_ok();
        let rsock = sock.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let recv_stop = Arc::new(AtomicBool::new(false));
        let sent_count = Arc::new(AtomicU64::new(0));
        let answered_to = Arc::new(AtomicU64::new(0));
        let (s_count, r_answered) = (sent_count.clone(), answered_to.clone());
        let s_stop = stop.clone();
        let sender = realtime_thread("prober-send", move || {
            let mut sent = Vec::with_capacity(1 << 16);
            let mut tcp = target.frame().map(|_| Retransmits::default());
            let start = Instant::now();
            let mut seq = 0u64;
            while !s_stop.load(Ordering::Relaxed) {
                let due = start + interval.mul_f64(seq as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                // A request held up behind a stalled connection waits from
                // when it was due (no coordinated omission); datagrams
                // never wait.
                let t = match tcp {
                    Some(_) => due.saturating_duration_since(origin.at).as_nanos() as u64,
                    None => origin.elapsed_ns(),
                };
                // A send error (e.g. no route for a moment) is a lost probe, not a stop.
                let _ = sock.send(&target.packet(id, seq, t));
                if let (Some(seen), Some(now)) = (tcp.as_mut(), retransmits(&sock)) {
                    *seen = Retransmits {
                        total: now.total,
                        backoff: seen.backoff.max(now.backoff),
                    };
                }
                sent.push(t);
                seq += 1;
                s_count.store(seq, Ordering::Release);
            }
            (sent, tcp)
        })?;
        let r_stop = recv_stop.clone();
        let receiver = realtime_thread("prober-recv", move || {
            let mut got = Vec::with_capacity(1 << 16);
            let mut buf = vec![0u8; 64 << 10];
            let mut pending = Vec::new();
            while !r_stop.load(Ordering::Relaxed) {
                let (n, stamp) = match recv_stamped(&rsock, &mut buf, kernel_stamps) {
                    Ok((0, _)) if target.frame().is_some() => {
                        return (got, Some("the guest closed the connection".into()))
                    }
                    Ok(r) => r,
                    Err(e) if target.frame().is_some() && !only_waiting(e) => {
                        return (got, Some(format!("the connection failed: {e}")))
                    }
                    Err(_) => continue,
                };
                // A kernel stamp is realtime: placed by its age on the
                // monotonic clock the send times count on.
                let t = match stamp {
                    Some(rt) => origin.since_stamp_ns(rt),
                    None => origin.elapsed_ns(),
                };
                match target.frame() {
                    None => {
                        if let Some((seq, _)) = target.reply(id, &buf[..n]) {
                            got.push((seq, t));
                            r_answered.fetch_max(seq + 1, Ordering::Release);
                        }
                    }
                    Some(size) => {
                        pending.extend_from_slice(&buf[..n]);
                        let whole = pending.len() / size * size;
                        for f in pending[..whole].chunks_exact(size) {
                            if let Some((seq, _)) = target.reply(id, f) {
                                got.push((seq, t));
                                r_answered.fetch_max(seq + 1, Ordering::Release);
                            }
                        }
                        pending.drain(..whole);
                    }
                }
            }
            (got, None)
        })?;
        Ok(Prober {
            stop,
            sender: Some(sender),
            receiver: Some(receiver),
            recv_stop,
            sent_count,
            answered_to,
        })
    }

    /// What stops the sending early (the replies are still received
    /// until [`Prober::finish`]).
    pub fn sender_stop(&self) -> impl Fn() + Send + Sync + 'static {
        let stop = self.stop.clone();
        move || stop.store(true, Ordering::Relaxed)
    }

    /// Stop sending, wait for the last probe's reply (at most `grace`),
    /// and return every probe.
    pub fn finish(self, grace: Duration) -> Vec<ProbeEvent> {
        self.finish_all(grace).events
    }

    /// As [`Prober::finish`], with the TCP transport's counters and error.
    pub fn finish_all(mut self, grace: Duration) -> Probed {
        let (sent, retransmits) = stop_and_join(&self.stop, &mut self.sender);
        // Late replies: until the last probe is answered, at most `grace`.
        let deadline = Instant::now() + grace;
        let last = self.sent_count.load(Ordering::Acquire);
        while self.answered_to.load(Ordering::Acquire) < last && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (got, error) = stop_and_join(&self.recv_stop, &mut self.receiver);
        Probed {
            events: merge(&sent, &got),
            retransmits,
            error,
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.recv_stop.store(true, Ordering::Relaxed);
    }
}

/// Receive one datagram (or what a stream socket has) with its kernel
/// timestamp (realtime ns), if any. `Ok((0, _))` when a stream socket's
/// peer closed; `Err(EAGAIN)` when the read timeout passed.
pub(crate) fn recv_stamped(
    sock: &impl AsRawFd,
    buf: &mut [u8],
    want_stamp: bool,
) -> nix::Result<(usize, Option<u64>)> {
    use nix::sys::socket::{recv, recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    if !want_stamp {
        return recv(sock.as_raw_fd(), buf, MsgFlags::empty()).map(|n| (n, None));
    }
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )?;
    let mut stamp = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmTimestampns(ts) = c {
            stamp = Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64);
        }
    }
    Ok((msg.bytes, stamp))
}

/// Whether a receive error only means "nothing yet" (timeout, signal).
pub(crate) fn only_waiting(e: nix::Error) -> bool {
    matches!(e, nix::Error::EAGAIN | nix::Error::EINTR)
}

/// Raise `flag` and take what the thread returns (nothing if it panicked).
pub(crate) fn stop_and_join<T: Default>(
    flag: &AtomicBool,
    thread: &mut Option<JoinHandle<T>>,
) -> T {
    flag.store(true, Ordering::Relaxed);
    thread
        .take()
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default()
}

/// A named thread running `f` at raised priority (see [`raise_priority`]).
pub(crate) fn realtime_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            raise_priority();
            f()
        })
}

/// Best effort: run this thread SCHED_FIFO so probes leave on time on a
/// host kept busy by TCG. Needs root; silently stays normal otherwise.
fn raise_priority() {
    // SAFETY: sched_param is plain data (its layout differs between glibc
    // and musl, hence zeroed + one field); the call affects only this thread.
    unsafe {
        let mut param: libc::sched_param = std::mem::zeroed();
        param.sched_priority = 10;
        libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param);
    }
}

/// Join send times (indexed by sequence) with replies; a duplicate reply
/// keeps the first arrival.
pub fn merge(sent_ns: &[u64], replies: &[(u64, u64)]) -> Vec<ProbeEvent> {
    let mut recv: Vec<Option<u64>> = vec![None; sent_ns.len()];
    for &(seq, t) in replies {
        if let Some(slot) = recv.get_mut(seq as usize) {
            if slot.is_none() {
                *slot = Some(t);
            }
        }
    }
    sent_ns
        .iter()
        .zip(recv)
        .enumerate()
        .map(|(seq, (&s, r))| ProbeEvent {
            seq: seq as u64,
            sent_ms: s as f64 / 1e6,
            recv_ms: r.map(|r| r as f64 / 1e6),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_marks_unanswered_probes_lost_and_ignores_unknown_sequences() {
        let ev = merge(
            &[1_000_000, 2_000_000, 3_000_000],
            &[(0, 1_500_000), (2, 3_200_000), (9, 1), (0, 9_000_000)],
        );
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].recv_ms, Some(1.5));
        assert_eq!(ev[1].recv_ms, None);
        assert_eq!(ev[2].recv_ms, Some(3.2));
    }

    #[test]
    fn prober_against_a_local_echo_sees_every_reply() {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = echo.local_addr().unwrap();
        echo.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = echo.recv_from(&mut buf) {
                    echo.send_to(&buf[..n], from).unwrap();
                }
            }
        });
        let p = Prober::start(None, addr, Duration::from_millis(2), Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let ev = p.finish(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        assert!(ev.len() >= 20, "{}", ev.len());
        assert!(ev.iter().all(|e| e.recv_ms.is_some_and(|r| r >= e.sent_ms)));
    }

    #[test]
    fn request_response_over_tcp_answers_every_request_and_reports_counters() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server =
            std::thread::spawn(move || crate::guest::serve::serve_rr(l.accept().unwrap().0));
        let target = ProbeTarget::TcpRr { addr, size: 1024 };
        let p = Prober::start(None, target, Duration::from_millis(5), Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let r = p.finish_all(Duration::from_millis(50));
        assert!(r.events.len() >= 20, "{}", r.events.len());
        assert!(r
            .events
            .iter()
            .all(|e| e.recv_ms.is_some_and(|t| t >= e.sent_ms)));
        assert_eq!(r.retransmits.map(|t| t.total), Some(0));
        assert!(r.error.is_none(), "{:?}", r.error);
        drop(server);
    }

    #[test]
    fn a_closed_request_connection_ends_with_an_error_not_a_spin() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // Accept, then close at once.
        std::thread::spawn(move || drop(l.accept().unwrap()));
        let target = ProbeTarget::TcpRr { addr, size: 64 };
        let p = Prober::start(None, target, Duration::from_millis(5), Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let r = p.finish_all(Duration::from_millis(20));
        assert!(r.error.is_some());
        assert!(r.events.iter().all(|e| e.recv_ms.is_none()));
    }

    // Lab tier (`--features lab`): raw ICMP sockets need root; it used to
    // skip itself without root and pass, now it runs where it can only pass.
    #[cfg(feature = "lab")]
    #[test]
    fn icmp_prober_against_loopback_sees_every_reply_and_not_its_own_requests() {
        let target = ProbeTarget::Icmp(Ipv4Addr::LOCALHOST);
        let p = Prober::start(None, target, Duration::from_millis(2), Instant::now())
            .expect("a raw ICMP socket (the lab tier runs as root)");
        std::thread::sleep(Duration::from_millis(100));
        let ev = p.finish(Duration::from_millis(50));
        assert!(ev.len() >= 20, "{}", ev.len());
        // On loopback the socket also sees each request; only replies count,
        // once each, never before their request left.
        assert!(ev.iter().all(|e| e.recv_ms.is_some_and(|r| r >= e.sent_ms)));
    }
}
