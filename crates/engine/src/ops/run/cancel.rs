//! Cancelling a build's `RUN` steps: a value the build owns and its
//! caller keeps a clone of (the CLI's signal handler), not process state.
//! [`Cancel::cancel`] kills every sandbox process started under it (and
//! with it, its pid namespace) and makes later steps refuse to start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A build's cancellation: cheap to clone, all clones one token.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Sandbox processes running now (their pids).
    running: Mutex<Vec<u32>>,
}

impl Cancel {
    /// A fresh token, not cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stop every running step at once and refuse later ones.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let running = self.running();
        for &pid in running.iter() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Start a process with `spawn` and keep its pid while it runs, unless
    /// the token is cancelled already (`None`, nothing started). Holding
    /// the lock across the spawn means a `cancel` cannot fall between the
    /// check and the registration.
    pub(crate) fn start<T, E>(
        &self,
        spawn: impl FnOnce() -> Result<(T, u32), E>,
    ) -> Option<Result<T, E>> {
        let mut running = self.running();
        if self.is_cancelled() {
            return None;
        }
        Some(spawn().map(|(child, pid)| {
            running.push(pid);
            child
        }))
    }

    /// The process `pid` has ended.
    pub(crate) fn finished(&self, pid: u32) {
        self.running().retain(|&p| p != pid);
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Vec<u32>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::Cancel;

    #[test]
    fn a_cancelled_token_starts_nothing_and_kills_what_runs() {
        let token = Cancel::new();
        let child = token
            .start(|| {
                let c = std::process::Command::new("sleep").arg("30").spawn()?;
                let pid = c.id();
                Ok::<_, std::io::Error>((c, pid))
            })
            .expect("not cancelled")
            .expect("sleep starts");
        let mut child = child;
        let clone = token.clone();
        clone.cancel();
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed: {status:?}");
        token.finished(child.id());
        assert!(token.is_cancelled());
        assert!(token.start(|| Ok::<_, ()>(((), 1))).is_none());
        // Another build's token is untouched.
        assert!(!Cancel::new().is_cancelled());
    }
}
