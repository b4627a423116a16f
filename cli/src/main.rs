//! `rel`: push, pull, verify and upgrade OTP releases.

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    tune_malloc(args.iter().skip(1).any(|a| a == "push" || a == "serve"));
    rel::run(args)
}

/// Push and pull hand buffers between threads: one allocates a chunk, another frees it. With
/// glibc's default of up to 8 arenas per core, each thread's arena keeps what it freed, and a
/// 1 GiB pull peaked at 131 MiB; with two arenas, 68 MiB, at the same speed.
///
/// `rel push` and the registry (`serve`) allocate and free packs of about 2 MiB by the dozen.
/// Above glibc's mmap threshold each is a fresh mapping, and memory freed above the trim
/// threshold goes back to the kernel: either way the next pack's pages fault in again,
/// zeroed. Kept in the heap (below 4 MiB, up to 32 MiB free), a push of 50 MiB makes 40%
/// fewer page faults and takes 2% less time. Other commands keep glibc's thresholds: a host
/// has no use for 32 MiB of freed memory kept after a pull.
#[allow(unsafe_code)]
fn tune_malloc(packs: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets tunables; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        if packs {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = packs;
}
