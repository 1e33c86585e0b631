//! The `edgegen` command line.

fn main() {
    // Stop quietly when the reader of stdout goes away (`edgegen ... |
    // head`), as command-line tools do, instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal at start-up, before
    // any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if let Err(e) = edgegen::cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
