//! The `linkrun` binary: parse the command line, run it, map the one error type to an exit code.

fn main() {
    let code = linkrun::cli::main();
    std::process::exit(code);
}
