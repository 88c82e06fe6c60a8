//! The agent's control protocol on the wire: one JSON request per line,
//! read with a bound ([`MAX_LINE`]) so a runaway or hostile peer cannot
//! make the guest's agent buffer without end; a line that is not a known
//! request gets an error reply that says why (the connection stays), an
//! oversized one ends the connection after its reply.

use std::io::{BufRead, Read};

use crate::protocol::Request;

/// The longest request line the agent reads (the largest real request is
/// well under 1 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// A line the agent will not carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong, for the error reply.
    pub message: String,
    /// The connection cannot go on (the rest of an oversized line is unread).
    pub fatal: bool,
}

/// Read the next request: `None` at the end of the connection.
pub fn read_request(r: &mut impl BufRead) -> std::io::Result<Option<Result<Request, Refusal>>> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
        return Ok(Some(Err(Refusal {
            message: format!("request line longer than {MAX_LINE} bytes; closing the connection"),
            fatal: true,
        })));
    }
    Ok(Some(parse_request(&line)))
}

/// One request line (with or without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, Refusal> {
    let refuse = |message: String| Refusal {
        message,
        fatal: false,
    };
    let text =
        std::str::from_utf8(line).map_err(|e| refuse(format!("bad request: not UTF-8 ({e})")))?;
    serde_json::from_str(text.trim_end()).map_err(|e| refuse(format!("bad request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_line_by_line_and_the_end_is_none() {
        let mut r = std::io::Cursor::new(b"{\"cmd\":\"ping\"}\n{\"cmd\":\"stop\"}".to_vec());
        assert_eq!(read_request(&mut r).unwrap(), Some(Ok(Request::Ping)));
        assert_eq!(read_request(&mut r).unwrap(), Some(Ok(Request::Stop)));
        assert_eq!(read_request(&mut r).unwrap(), None);
    }

    #[test]
    fn unknown_malformed_and_oversized_lines_are_refused_saying_why() {
        let e = parse_request(b"{\"cmd\":\"format_disk\"}\n").unwrap_err();
        assert!(
            e.message.contains("unknown variant `format_disk`") && !e.fatal,
            "{e:?}"
        );
        let e = parse_request(b"{\"cmd\":\"start\"}").unwrap_err();
        assert!(e.message.contains("missing field `rate`"), "{e:?}");
        assert!(parse_request(&[0xff, 0xfe])
            .unwrap_err()
            .message
            .contains("UTF-8"));
        let mut big = vec![b' '; MAX_LINE + 10];
        big.push(b'\n');
        let mut r = std::io::Cursor::new(big);
        let e = read_request(&mut r).unwrap().unwrap().unwrap_err();
        assert!(e.fatal, "{e:?}");
        // A line of exactly the limit is still read.
        let mut ok = vec![b' '; MAX_LINE - 15];
        ok.extend_from_slice(b"{\"cmd\":\"ping\"}\n");
        assert_eq!(
            read_request(&mut std::io::Cursor::new(ok)).unwrap(),
            Some(Ok(Request::Ping))
        );
    }
}
