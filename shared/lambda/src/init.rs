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
        // The build waits for a word from the connection: run one after the other, it would hear
        // nothing in five seconds.
        let (tx, rx) = std::sync::mpsc::channel();
        let (heard, answer) =
            build_while_connecting(move || rx.recv_timeout(Duration::from_secs(5)).is_ok(), async move {
                tx.send(()).unwrap();
                "warm"
            })
            .await;
        assert!(heard, "the build ran before the connection started");
        assert_eq!(answer, "warm");
    }

    #[tokio::test]
    #[should_panic(expected = "rules/triggers.toml")]
    async fn a_panic_in_the_build_is_raised_again() {
        build_while_connecting(|| -> u8 { panic!("rules/triggers.toml is checked by tests") }, async {}).await;
    }
}
