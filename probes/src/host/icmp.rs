//! ICMP echo as a probe transport: echo requests carrying the probe's
//! sequence and send time, answered by the guest's kernel (no agent
//! needed: any guest), read back from a raw ICMP socket. Pure encoding and
//! decoding here; the prober sends and receives.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use crate::protocol::{decode_probe, encode_probe, PROBE_LEN};

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const HEADER: usize = 8;

/// The internet checksum (RFC 1071) of `b`.
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request from prober `id` carrying probe `seq` sent at `sent_ns`.
pub fn echo_request(id: u16, seq: u64, sent_ns: u64) -> [u8; HEADER + PROBE_LEN] {
    let mut b = [0u8; HEADER + PROBE_LEN];
    b[0] = ECHO_REQUEST;
    b[4..6].copy_from_slice(&id.to_be_bytes());
    b[6..8].copy_from_slice(&(seq as u16).to_be_bytes());
    b[HEADER..].copy_from_slice(&encode_probe(seq, sent_ns));
    let c = checksum(&b);
    b[2..4].copy_from_slice(&c.to_be_bytes());
    b
}

/// The probe (sequence, send time) in an echo reply to prober `id`, as a
/// raw IPv4 socket returns it (IP header first); `None` for anything else
/// (other ICMP traffic, other probers, a corrupted reply).
pub fn decode_reply(packet: &[u8], id: u16) -> Option<(u64, u64)> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    let icmp = packet.get(ihl..)?;
    if icmp.len() != HEADER + PROBE_LEN || icmp[0] != ECHO_REPLY || checksum(icmp) != 0 {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != id {
        return None;
    }
    let (seq, sent) = decode_probe(&icmp[HEADER..])?;
    (seq as u16 == u16::from_be_bytes([icmp[6], icmp[7]])).then_some((seq, sent))
}

/// A raw ICMP socket connected to `target` (needs root or CAP_NET_RAW).
pub fn socket(target: Ipv4Addr) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{
        connect, socket, AddressFamily, SockFlag, SockProtocol, SockType, SockaddrIn,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Icmp,
    )?;
    use std::os::fd::AsRawFd;
    connect(
        fd.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(target, 0)),
    )?;
    Ok(fd)
}

/// Whether `ip` answers one ICMP echo within `timeout` (socket opened in
/// network namespace `netns`).
pub fn answers(
    netns: Option<&str>,
    ip: Ipv4Addr,
    timeout: std::time::Duration,
) -> std::io::Result<bool> {
    let fd = crate::host::netns::in_netns(netns, || socket(ip))?;
    let sock = std::net::UdpSocket::from(fd);
    let id = (std::process::id() as u16).wrapping_add(0x5a5a);
    let start = std::time::Instant::now();
    let mut buf = [0u8; 128];
    let mut seq = 0;
    while start.elapsed() < timeout {
        sock.send(&echo_request(id, seq, 0))?;
        sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
        let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
        while std::time::Instant::now() < until {
            match sock.recv(&mut buf) {
                Ok(n) if decode_reply(&buf[..n], id).is_some() => return Ok(true),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        seq += 1;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply a guest's kernel makes of a request: type 0, new checksum,
    /// behind a 20-byte IP header.
    fn reply_to(req: &[u8]) -> Vec<u8> {
        let mut icmp = req.to_vec();
        icmp[0] = ECHO_REPLY;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![0x45u8; 1];
        p.extend([0u8; 19]);
        p.extend(icmp);
        p
    }

    #[test]
    fn a_request_checks_out_and_its_reply_decodes_to_the_probe() {
        let req = echo_request(0x1234, 70_000, 5_000_000);
        assert_eq!(checksum(&req), 0, "a valid packet sums to zero");
        assert_eq!(
            decode_reply(&reply_to(&req), 0x1234),
            Some((70_000, 5_000_000))
        );
    }

    #[test]
    fn other_probers_requests_and_corruption_are_ignored() {
        let req = echo_request(7, 3, 9);
        let reply = reply_to(&req);
        assert_eq!(decode_reply(&reply, 8), None, "another prober's id");
        let mut own_request = vec![0x45u8];
        own_request.extend([0u8; 19]);
        own_request.extend(req);
        assert_eq!(decode_reply(&own_request, 7), None, "a request is no reply");
        let mut bad = reply.clone();
        bad[30] ^= 1;
        assert_eq!(decode_reply(&bad, 7), None, "checksum");
        assert_eq!(decode_reply(&reply[..25], 7), None, "truncated");
        assert_eq!(decode_reply(&[], 7), None);
    }

    #[test]
    fn checksum_of_an_odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xff]), !0xff00);
    }
}
