//! Signals without handlers: SIGINT, SIGTERM and SIGHUP are blocked in every
//! thread (workers inherit the mask of the thread that spawns them) and the
//! main thread waits for them synchronously with `sigwait`: the first two
//! stop the proxy, SIGHUP reloads its config.

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Call before
/// spawning threads so they inherit the mask.
pub fn block_stop_signals() {
    // SAFETY: plain libc signal-mask calls on a zeroed, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGINT, SIGTERM or SIGHUP, all of which mean stop to the
/// commands without a config to reload (demo, sample-origin); returns the
/// signal number.
pub fn wait_stop_signal() -> i32 {
    // SAFETY: as above; sigwait writes the received signal into `sig`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        let mut sig: libc::c_int = 0;
        loop {
            if libc::sigwait(&set, &mut sig) == 0 {
                return sig;
            }
        }
    }
}

/// Waits for SIGINT, SIGTERM or SIGHUP; returns the signal number.
pub fn wait_signal() -> i32 {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        let mut sig: libc::c_int = 0;
        loop {
            if libc::sigwait(&set, &mut sig) == 0 {
                return sig;
            }
        }
    }
}
