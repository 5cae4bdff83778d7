//! A one-shot channel from a pool thread to a worker's task: one value,
//! sent once, awaited once. The waiting task's [`Waker`] is woken from the
//! pool thread (monoio's `sync` feature carries a wake to another thread's
//! ring, as the collapsed flights' do, `cache::collapse`). The mutex is
//! held for a store or a take, by two parties, once each.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender is gone (sent, or dropped without sending).
    sent: bool,
    /// The receiver is gone: the value is wanted no more.
    closed: bool,
}

/// The pool thread's end.
pub struct Sender<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

/// The waiting task's end: a future of the value, `None` when the sender
/// went without sending one.
pub struct Receiver<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

/// A connected pair.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        sent: false,
        closed: false,
    }));
    (Sender { slot: slot.clone() }, Receiver { slot })
}

impl<T> Sender<T> {
    /// The receiver is gone (it gave up waiting): the work need not be done.
    pub fn is_closed(&self) -> bool {
        self.slot.lock().map_or(true, |s| s.closed)
    }

    /// Sends `value` and wakes the receiver.
    pub fn send(self, value: T) {
        if let Ok(mut s) = self.slot.lock() {
            s.value = Some(value);
        }
        // Drop marks it sent and wakes.
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = match self.slot.lock() {
            Ok(mut s) => {
                s.sent = true;
                s.waker.take()
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Not waiting on a busy lock (see `poll`): the job then runs for
        // nothing, which is all `closed` saves.
        if let Ok(mut s) = self.slot.try_lock() {
            s.closed = true;
            s.waker = None;
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // The worker never blocks on the lock: a pool thread at idle
        // priority holding it may not get a CPU for a while (priority
        // inversion). Busy: poll again after the loop's other tasks.
        let mut s = match self.slot.try_lock() {
            Ok(s) => s,
            Err(std::sync::TryLockError::WouldBlock) => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Err(std::sync::TryLockError::Poisoned(_)) => return Poll::Ready(None),
        };
        if s.sent {
            return Poll::Ready(s.value.take());
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_value_sent_from_another_thread_wakes_the_receiver() {
        let (tx, rx) = channel::<u32>();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut rx = std::pin::pin!(rx);
        assert!(rx.as_mut().poll(&mut cx).is_pending());
        assert!(!tx.is_closed());
        std::thread::spawn(move || tx.send(7)).join().unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.as_mut().poll(&mut cx), Poll::Ready(Some(7)));
    }

    #[test]
    fn a_sender_dropped_unsent_gives_none_and_a_dropped_receiver_closes() {
        let (tx, rx) = channel::<u32>();
        drop(tx);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(std::pin::pin!(rx).poll(&mut cx), Poll::Ready(None));
        let (tx, rx) = channel::<u32>();
        drop(rx);
        assert!(tx.is_closed());
        tx.send(1);
    }
}
