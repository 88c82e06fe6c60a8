//! What a TCP socket's kernel state says about retransmissions
//! (`getsockopt(TCP_INFO)`): total segments retransmitted and how often
//! the retransmission timer has backed off.

use std::os::fd::AsRawFd;

/// Retransmission counters of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retransmits {
    /// `tcpi_total_retrans`: segments retransmitted over the connection.
    pub total: u32,
    /// `tcpi_backoff`: exponential RTO backoffs of the current timeout.
    pub backoff: u8,
}

/// Read a TCP socket's retransmission counters; `None` if it is not TCP.
pub fn retransmits(sock: &impl AsRawFd) -> Option<Retransmits> {
    // SAFETY: tcp_info is plain data; the kernel fills at most `len`
    // bytes of it and the call touches nothing else.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (rc == 0).then_some(Retransmits {
            total: info.tcpi_total_retrans,
            backoff: info.tcpi_backoff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_loopback_connection_has_retransmitted_nothing_and_udp_is_not_tcp() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert_eq!(retransmits(&c), Some(Retransmits::default()));
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(retransmits(&u), None);
    }
}
