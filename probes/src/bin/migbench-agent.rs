//! migbench-agent: runs inside the guest. Echoes UDP probes, runs the memory
//! dirtier on request and answers the JSON-lines control protocol.
//! Statically linked so the initramfs needs nothing but busybox beside it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Instant;

use migbench_probes::dirtier::Dirtier;
use migbench_probes::protocol::{Request, Response, CONTROL_PORT, ECHO_PORT};

fn main() {
    let origin = Instant::now();
    let echo = UdpSocket::bind(("0.0.0.0", ECHO_PORT)).expect("bind UDP echo port");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            if let Ok((n, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(&buf[..n], from);
            }
        }
    });
    let listener = TcpListener::bind(("0.0.0.0", CONTROL_PORT)).expect("bind control port");
    println!("migbench-agent ready: echo udp/{ECHO_PORT}, control tcp/{CONTROL_PORT}");
    let mut dirtier: Option<Dirtier> = None;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if let Err(e) = serve(conn, &mut dirtier, origin) {
            eprintln!("migbench-agent: control connection: {e}");
        }
    }
}

fn serve(conn: TcpStream, dirtier: &mut Option<Dirtier>, origin: Instant) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    for line in BufReader::new(conn).lines() {
        let line = line?;
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::Error {
                message: format!("bad request: {e}"),
            },
            Ok(req) => handle(req, dirtier, origin),
        };
        let mut text = serde_json::to_string(&reply).expect("serialise reply");
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

fn handle(req: Request, dirtier: &mut Option<Dirtier>, origin: Instant) -> Response {
    let now_ms = || origin.elapsed().as_secs_f64() * 1e3;
    match req {
        Request::Ping => Response::Pong { now_ms: now_ms() },
        Request::Start { rate, working_set } => {
            // Dropping the old dirtier stops it and frees its memory first.
            *dirtier = None;
            *dirtier = Some(Dirtier::start(rate, working_set, origin));
            Response::Done
        }
        Request::Stop => {
            if let Some(d) = dirtier.as_mut() {
                d.stop();
            }
            Response::Done
        }
        Request::Samples => Response::Samples {
            now_ms: now_ms(),
            samples: dirtier
                .as_ref()
                .map(|d| d.drain_samples())
                .unwrap_or_default(),
        },
        Request::Verify => match dirtier.as_ref() {
            None => Response::Error {
                message: "no workload was started, nothing to verify".into(),
            },
            Some(d) => {
                let (pages, bad_pages, writes) = d.verify();
                Response::Verified {
                    pages,
                    bad_pages,
                    writes,
                }
            }
        },
    }
}
