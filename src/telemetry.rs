//! Logging: tracing subscriber with `RUST_LOG` filtering, text or JSON lines on stderr.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls are ignored. `default_level` applies when
/// `RUST_LOG` is unset (one-shot commands use `warn` so their output is just their answer).
pub fn init(format: LogFormat, default_level: &str) {
    use std::io::IsTerminal;
    // redis-rs warns on every failed reconnect to a Cluster node that is down (hundreds a second
    // during a failover); hookline reports the failures that matter itself.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},redis=error")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
