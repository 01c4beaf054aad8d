//! The floor for the 2,000-call figure: a minimal blocking HTTP/1.1 client (standard library only)
//! that sends the same requests as the benchmark's script over one kept-alive connection and
//! does nothing else. Compiled by benches/run.sh with `rustc -O` into its temp dir.
//!
//! `raw_client PORT KEY N`: N sequential `GET /x?i=I` to 127.0.0.1:PORT with `X-Api-Key: KEY`;
//! exits 1 unless every answer is a 200 with a body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: raw_client PORT KEY N");
        std::process::exit(2);
    }
    let n: usize = args[3].parse().expect("N must be a number");
    let stream = TcpStream::connect(("127.0.0.1", args[1].parse::<u16>().expect("PORT"))).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    for i in 0..n {
        let req = format!("GET /x?i={i} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {}\r\n\r\n", args[2]);
        writer.write_all(req.as_bytes()).expect("write");
        line.clear();
        reader.read_line(&mut line).expect("read status");
        if !line.starts_with("HTTP/1.1 200") {
            eprintln!("raw_client: request {i} got `{}`", line.trim_end());
            std::process::exit(1);
        }
        let mut length = 0usize;
        loop {
            line.clear();
            reader.read_line(&mut line).expect("read header");
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body).expect("read body");
        if body.is_empty() {
            eprintln!("raw_client: request {i} got an empty body");
            std::process::exit(1);
        }
    }
}
