//! What can sit between a browser and hoist, on loopback: a slow link (bytes toward hoist
//! held to a rate, so a push lasts long enough to watch and photograph), and a proxy that
//! fails on its own (a load balancer's HTML 502 page, or a dropped connection). Plain threads
//! and blocking sockets, so they never depend on the test's async runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// A TCP relay to hoist whose browser-to-hoist direction carries at most `rate` bytes a
/// second. The page is loaded through it too, so it is the page's own origin.
pub struct SlowLink {
    pub url: String,
}

impl SlowLink {
    pub fn start(upstream: &str, rate: u64) -> SlowLink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.to_string();
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (client2, server2) = (clone(&client), clone(&server));
                thread::spawn(move || copy(client, server, Some(rate)));
                thread::spawn(move || copy(server2, client2, None));
            }
        });
        SlowLink { url }
    }
}

fn clone(s: &TcpStream) -> TcpStream {
    s.try_clone().expect("clone socket")
}

/// Copies until end of stream, at most `rate` bytes a second, then half-closes `to`.
fn copy(mut from: TcpStream, mut to: TcpStream, rate: Option<u64>) {
    let started = Instant::now();
    let mut moved = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        moved += n as u64;
        if let Some(rate) = rate {
            // Rate limiting, not waiting for a condition: stay on the schedule `rate` sets.
            let due = Duration::from_secs_f64(moved as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                thread::sleep(ahead);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// How [`FailingProxy`] answers a push.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// Reads the whole request, then answers `502` with an HTML page (nginx's words).
    HtmlBadGateway,
    /// Reads the request head and some of the body, then closes the connection unanswered.
    Drop,
}

/// Serves hoist's page (its bytes, fetched beforehand) at `/` and fails every push.
pub struct FailingProxy {
    pub url: String,
}

pub const BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

impl FailingProxy {
    pub fn start(page: String, failure: Failure) -> FailingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let page = page.clone();
                thread::spawn(move || answer(conn, &page, failure));
            }
        });
        FailingProxy { url }
    }
}

/// One request per connection (every answer says `Connection: close`).
fn answer(conn: TcpStream, page: &str, failure: Failure) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(clone(&conn));
    let mut head = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        head.push(std::mem::take(&mut line));
    }
    let request_line = head.first().cloned().unwrap_or_default();
    let length: u64 = head
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut conn = conn;
    if request_line.starts_with("GET / ") {
        respond(&mut conn, "200 OK", "text/html; charset=utf-8", page);
    } else if !request_line.starts_with("POST ") {
        respond(&mut conn, "404 Not Found", "text/plain", "not found");
    } else {
        match failure {
            Failure::HtmlBadGateway => {
                let _ = std::io::copy(&mut reader.take(length), &mut std::io::sink());
                respond(&mut conn, "502 Bad Gateway", "text/html", BAD_GATEWAY_PAGE);
            }
            Failure::Drop => {
                let _ = std::io::copy(&mut reader.take(64 * 1024), &mut std::io::sink());
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
    }
}

fn respond(conn: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
}
