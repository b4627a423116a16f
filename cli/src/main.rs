//! `rel`: push, pull, verify and upgrade OTP releases.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
