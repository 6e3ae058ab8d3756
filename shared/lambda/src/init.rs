//! Cold start: what a function prepares before its first event.

use std::future::Future;

/// Runs `build` (CPU work that needs no network: a rule table, models) on a blocking thread while
/// `connect` (the SDK's configuration and the connection warm-up) waits on the network, and
/// returns both. The two used to run one after the other; the warm-up's round trips (DNS, TCP,
/// TLS, a read) leave the CPU idle, so even a function with a fraction of a vCPU gains.
/// A panic in `build` is raised again here, as if it had run inline.
pub async fn build_while_connecting<T, C>(build: impl FnOnce() -> T + Send + 'static, connect: C) -> (T, C::Output)
where
    T: Send + 'static,
    C: Future,
{
    let built = tokio::task::spawn_blocking(build);
    let connected = connect.await;
    match built.await {
        Ok(value) => (value, connected),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels the task; then there is no event to serve.
        Err(e) => panic!("cold-start build cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_build_runs_while_the_connection_waits() {
        // Each side tells the other it has started, then waits to hear that the other has: run one
        // after the other, in either order, the first to run would hear nothing in five seconds.
        let wait = Duration::from_secs(5);
        let (build_started, build_heard) = std::sync::mpsc::channel();
        let (connect_started, connect_heard) = std::sync::mpsc::channel();
        let (built, connected) = build_while_connecting(
            move || {
                let _ = build_started.send(());
                connect_heard.recv_timeout(wait).is_ok()
            },
            async move {
                let heard = tokio::task::spawn_blocking(move || build_heard.recv_timeout(wait).is_ok());
                let _ = connect_started.send(());
                heard.await.unwrap()
            },
        )
        .await;
        assert!(built, "the build never heard that the connection had started");
        assert!(connected, "the connection never heard that the build had started");
    }

    #[tokio::test]
    #[should_panic(expected = "rules/triggers.toml")]
    async fn a_panic_in_the_build_is_raised_again() {
        build_while_connecting(|| -> u8 { panic!("rules/triggers.toml is checked by tests") }, async {}).await;
    }
}
