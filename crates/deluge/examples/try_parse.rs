//! Parses a Deluge file and prints its S-expression, or its error reports.
fn main() {
    let path = std::env::args().nth(1).expect("path");
    let src = std::fs::read_to_string(&path).expect("read");
    match deluge::parse(&src) {
        Ok(p) => print!("{}", p.to_sexpr()),
        Err(es) => es.iter().for_each(|e| print!("{}", deluge::report(&src, &path, e))),
    }
}
