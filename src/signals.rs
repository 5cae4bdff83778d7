//! Signals without handlers: SIGINT, SIGTERM and SIGHUP are blocked in every
//! thread (workers inherit the mask of the thread that spawns them) and the
//! main thread waits for them synchronously with `sigwait`. For `run`,
//! SIGINT and SIGTERM stop the proxy and SIGHUP reloads its config; the
//! commands without a config (demo, sample-origin) stop on any of the three.

/// SIGINT, SIGTERM and SIGHUP.
fn handled() -> libc::sigset_t {
    // SAFETY: plain libc calls on a zeroed, then initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Call before
/// spawning threads so they inherit the mask.
pub fn block_stop_signals() {
    let set = handled();
    // SAFETY: set is initialised; the old mask is not needed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGINT, SIGTERM or SIGHUP; returns the signal number.
pub fn wait_signal() -> i32 {
    let set = handled();
    let mut sig: libc::c_int = 0;
    loop {
        // SAFETY: set is initialised; sigwait writes the signal into `sig`.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            return sig;
        }
    }
}
