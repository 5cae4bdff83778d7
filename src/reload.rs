//! Config reloads (SIGHUP) on a thread of their own.
//!
//! The main thread waits for signals; a reload reads files and may resolve
//! origin names, which can take a while (a slow disk, a slow resolver, a
//! config file that is a pipe whose writer is late). So the main thread
//! only asks for a reload and goes back to waiting: SIGTERM is handled at
//! once even while a reload is loading, and the stop does not wait for it.
//!
//! One reload runs at a time, and at most one more waits behind it: SIGHUPs
//! that arrive while one is already waiting fold into it, since it reads
//! the config file after all of them.

use crate::config::Config;
use crate::runtime::Reloader;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

/// What [`Reloads::request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Started now (the thread was idle).
    Started,
    /// Queued behind the reload that is loading.
    Queued,
    /// Folded into the one already queued.
    Folded,
    /// The reload thread is gone (it panicked): nothing will reload.
    Gone,
}

/// The reload thread and its queue of one.
pub struct Reloads {
    tx: SyncSender<()>,
    /// Reloads asked for and not yet finished (loading or queued).
    pending: Arc<AtomicUsize>,
}

impl Reloads {
    /// Starts the thread that runs `reload` once per accepted request. The
    /// thread inherits the caller's signal mask (block the stop signals
    /// first). It ends when `self` is dropped and nothing is pending; at
    /// process exit it is simply abandoned.
    pub fn start(reload: impl Fn() + Send + 'static) -> std::io::Result<Reloads> {
        let (tx, rx) = sync_channel::<()>(1);
        let pending = Arc::new(AtomicUsize::new(0));
        let p = pending.clone();
        std::thread::Builder::new()
            .name("ringfront-reload".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    reload();
                    p.fetch_sub(1, Ordering::SeqCst);
                }
            })?;
        Ok(Reloads { tx, pending })
    }

    /// Asks for a reload (see the module doc for when it runs).
    pub fn request(&self) -> Requested {
        // Counted before it is sent so the thread never decrements first.
        let before = self.pending.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(()) {
            Ok(()) if before == 0 => Requested::Started,
            Ok(()) => Requested::Queued,
            Err(e) => {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                match e {
                    TrySendError::Full(()) => Requested::Folded,
                    TrySendError::Disconnected(()) => Requested::Gone,
                }
            }
        }
    }

    /// Whether a reload is loading or queued.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst) > 0
    }
}

/// One reload: reads and validates `path` and, when valid, publishes it
/// through `to`. Logs the outcome: the settings that need a restart, or each
/// error and `reload failed`.
pub fn reload_file(path: &Path, to: &Reloader) {
    log::info!("reloading {}", path.display());
    match Config::load(path) {
        Ok(cfg) => {
            for line in to.reload(cfg) {
                log::warn!("reload: {line}");
            }
            log::info!("reloaded {}: new requests use it", path.display());
        }
        Err(errs) => {
            for e in errs {
                log::error!("reload: {}: {e}", path.display());
            }
            log::error!("reload failed: keeping the running config");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn one_reload_loads_one_waits_and_the_rest_fold_into_it() {
        let (started_tx, started) = channel::<()>();
        let (go, go_rx) = channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let r = Reloads::start(move || {
            let _ = started_tx.send(());
            // Blocks until the test lets this reload finish.
            let _ = go_rx.lock().map(|rx| rx.recv_timeout(WAIT));
        })
        .unwrap();
        assert!(!r.pending());
        assert_eq!(r.request(), Requested::Started);
        started.recv_timeout(WAIT).expect("the first reload starts");
        assert_eq!(r.request(), Requested::Queued);
        assert_eq!(r.request(), Requested::Folded);
        assert_eq!(r.request(), Requested::Folded);
        assert!(r.pending());
        go.send(()).unwrap();
        started.recv_timeout(WAIT).expect("the queued reload starts");
        go.send(()).unwrap();
        // Exactly two ran: no third one starts.
        drop(r);
        assert!(started.recv_timeout(WAIT).is_err(), "a third reload ran");
    }
}
