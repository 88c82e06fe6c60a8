//! Host side of the control protocol: one request per TCP connection to the
//! guest agent, made from inside the client namespace.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::host::netns::in_netns;
use crate::protocol::{Request, Response};

/// Errors talking to the guest agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Connecting, writing or reading failed.
    #[error("Agent at {addr} unreachable")]
    Io {
        /// Agent address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The reply was not valid.
    #[error("Agent reply not understood: {0}")]
    Protocol(String),
    /// The agent refused the request.
    #[error("Agent refused: {0}")]
    Refused(String),
}

/// Talks to one guest agent.
#[derive(Debug, Clone)]
pub struct AgentClient {
    netns: Option<String>,
    addr: SocketAddr,
}

impl AgentClient {
    /// An agent at `addr`, reached from namespace `netns`.
    pub fn new(netns: Option<String>, addr: SocketAddr) -> Self {
        AgentClient { netns, addr }
    }

    /// Send one request and wait up to `timeout` for the reply.
    pub fn request(&self, req: &Request, timeout: Duration) -> Result<Response, AgentError> {
        let addr = self.addr;
        let io = |source| AgentError::Io { addr, source };
        let stream = in_netns(self.netns.as_deref(), || {
            TcpStream::connect_timeout(&addr, timeout)
        })
        .map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut line =
            serde_json::to_string(req).map_err(|e| AgentError::Protocol(e.to_string()))?;
        line.push('\n');
        (&stream).write_all(line.as_bytes()).map_err(io)?;
        let mut reply = String::new();
        BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
        match serde_json::from_str::<Response>(&reply) {
            Ok(Response::Error { message }) => Err(AgentError::Refused(message)),
            Ok(r) => Ok(r),
            Err(e) => Err(AgentError::Protocol(format!("{e}: {reply:?}"))),
        }
    }
}
