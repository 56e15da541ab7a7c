//! Work that must give way to chat: file transfers, in the server and in the
//! SDK, run on a runtime of their own whose threads have a lower CPU
//! priority (nice 10). On a machine whose cores a big transfer saturates,
//! chat frames are then read, relayed and sent first (README, Performance,
//! `media`: the chat p99 during a same-client 32 MB upload went from
//! 77–117 ms to about 5 ms). One runtime serves a whole process, so the
//! messenger with its embedded server has one set of these threads.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The nice value of the threads (0 is normal, 19 the lowest).
const NICE: i32 = 10;

/// Two threads keep an upload and a download moving at once.
const THREADS: usize = 2;

/// The runtime, started on first use; `None` when it could not be started
/// (then the work runs on the caller's runtime).
fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(THREADS)
                .max_blocking_threads(2 * THREADS)
                .thread_name("rtm-transfer")
                .on_thread_start(lower_priority)
                .enable_all()
                .build()
                .map_err(|e| {
                    tracing::warn!("no transfer runtime ({e}); transfers share the main one")
                })
                .ok()
        })
        .as_ref()
}

fn lower_priority() {
    #[cfg(unix)]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::debug!("cannot lower a transfer thread's priority: {e}");
    }
}

/// Runs `work` on the low-priority runtime and waits for it. Dropping the
/// wait stops the work; `Err` when the work panicked or was stopped.
pub(crate) async fn run<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let task = match runtime() {
        Some(rt) => rt.spawn(work),
        None => tokio::spawn(work),
    };
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _guard = AbortOnDrop(task.abort_handle());
    task.await
}
