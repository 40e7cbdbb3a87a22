//! Blocking work called from async code without a hop to another thread.

/// Runs `f` on this thread. On a multi-threaded tokio runtime the worker first hands its other
/// tasks to another thread (`block_in_place`), so a blocking call (a SQLite commit, a hardware
/// token) does not hold them up. Elsewhere (a current-thread runtime, no runtime) it simply
/// runs `f`. Not a latency win by itself: the hand-over of the worker costs about what a
/// `spawn_blocking` hop does (BENCHMARKS.md §10e).
pub fn here<R>(f: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_without_a_runtime() {
        assert_eq!(super::here(|| 41 + 1), 42);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_on_a_current_thread_runtime() {
        assert_eq!(super::here(|| "inline"), "inline");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_on_the_calling_thread_of_a_multi_threaded_runtime() {
        let caller = std::thread::current().id();
        assert_eq!(super::here(|| std::thread::current().id()), caller);
    }
}
