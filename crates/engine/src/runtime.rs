//! The tokio runtime the engine's network work runs on. Only the CLI makes
//! a runtime; the engine is handed a [`Handle`] to it and blocks on it from
//! its own threads (the solver's, a store read's) with [`block_on`].

use std::future::Future;

pub use tokio::runtime::Handle;

/// Run `fut` to completion on `handle`'s runtime from synchronous code.
///
/// From a plain thread (the solver's) this is `handle.block_on`. From
/// inside a runtime (a store read made by a push's task, which may need a
/// lazily imported layer) blocking a worker would stall the runtime's I/O:
/// on a multi-thread runtime the worker hands its work off first
/// (`block_in_place`); on a current-thread one the future runs on a
/// thread of its own (the only worker is blocked, so `handle` must then
/// be another runtime's).
pub fn block_on<F>(handle: &Handle, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => handle.block_on(fut),
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| handle.block_on(fut))
        }
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| handle.block_on(fut))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

/// The runtime a `COPY`/`ADD` downloads its URLs on (`None`: the op has
/// no URL to fetch, or fails saying it has no runtime). Not part of what
/// the op does: any two compare equal.
#[derive(Debug, Clone, Default)]
pub struct Runtime(pub Option<Handle>);

impl PartialEq for Runtime {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Runtime {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timer needs the runtime's driver: it fires only if the runtime
    /// still runs its I/O and time while the caller blocks.
    async fn tick() -> u8 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        7
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn block_on_from_a_plain_thread() {
        let h = Handle::current();
        let got = std::thread::spawn(move || block_on(&h, tick()));
        assert_eq!(got.join().unwrap(), 7);
    }

    /// The one worker blocks: without handing its work off the timer
    /// would never fire and this would hang.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn block_on_from_inside_a_runtime_worker() {
        let h = Handle::current();
        let got = tokio::spawn(async move { block_on(&h, tick()) });
        assert_eq!(got.await.unwrap(), 7);
    }
}
