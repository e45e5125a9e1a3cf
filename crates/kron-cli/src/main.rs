//! The `kron` binary: everything is in the library, shared with the Python console script.

fn main() {
    let code = kron_cli::main_with_os_args(std::env::args_os().collect());
    std::process::exit(code);
}
