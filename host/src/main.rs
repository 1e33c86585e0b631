//! The `edgegen` command line.

fn main() {
    if let Err(e) = edgegen::cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
