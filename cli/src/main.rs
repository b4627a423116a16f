//! `rel`: push, pull, verify and upgrade OTP releases.

fn main() -> std::process::ExitCode {
    rel::run(std::env::args_os())
}
