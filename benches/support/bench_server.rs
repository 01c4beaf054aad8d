//! Fallback HTTP server for benches/run.sh when nginx is not installed: standard library only,
//! compiled by the script with `rustc -O` into its temp dir (not a Cargo target; Cargo only
//! auto-discovers `benches/*.rs` and `benches/*/main.rs`).
//!
//! `bench_server KEY`: listens on 127.0.0.1:0, prints the port on stdout, and answers every request
//! with `200 {"ok":true}` (application/json) over HTTP/1.1 keep-alive, one thread per connection;
//! paths under `/x` need the header `X-Api-Key: KEY` (else 401), as the nginx config does.
//! `GET /__status` answers in nginx's stub_status format so the script counts accepted
//! connections the same way for both servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const BODY: &str = "{\"ok\":true}";

fn serve(stream: TcpStream, key: Arc<String>, accepts: Arc<AtomicU64>, requests: Arc<AtomicU64>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut length = 0usize;
        let mut close = false;
        let mut key_ok = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                    close = true;
                } else if name.eq_ignore_ascii_case("x-api-key") && value == key.as_str() {
                    key_ok = true;
                }
            }
        }
        if length > 0 {
            std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
        }
        let n = requests.fetch_add(1, Ordering::Relaxed) + 1;
        let (status, ctype, body) = if path == "/__status" {
            let a = accepts.load(Ordering::Relaxed);
            ("200 OK", "text/plain", format!("Active connections: 1 \nserver accepts handled requests\n {a} {a} {n} \n"))
        } else if path.starts_with("/x") && !key_ok {
            ("401 Unauthorized", "application/json", "{\"error\":\"bad key\"}".to_string())
        } else {
            ("200 OK", "application/json", BODY.to_string())
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nServer: bench\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
            body.len(),
            if close { "close" } else { "keep-alive" },
        );
        writer.write_all(resp.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

fn main() -> std::io::Result<()> {
    let key = Arc::new(std::env::args().nth(1).unwrap_or_default());
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let accepts = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        accepts.fetch_add(1, Ordering::Relaxed);
        let (k, a, r) = (key.clone(), accepts.clone(), requests.clone());
        std::thread::spawn(move || {
            let _ = serve(stream, k, a, r);
        });
    }
    Ok(())
}
