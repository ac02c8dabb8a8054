//! `hookline verify`: check a Standard Webhooks signature of a body read from stdin, as a
//! receiver would (exit 0 valid, 1 not, 2 for a malformed secret).

use std::io::Read;

use anyhow::Context as _;

use super::InputError;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The endpoint's key: its whsec_ secret (v1), or its whpk_ public key (v1a, ed25519).
    #[arg(long, env = "HOOKLINE_VERIFY_SECRET")]
    pub secret: String,
    /// The webhook-id header.
    #[arg(long)]
    pub id: String,
    /// The webhook-timestamp header (Unix seconds).
    #[arg(long)]
    pub timestamp: String,
    /// The webhook-signature header (space-separated v1,<base64> / v1a,<base64> entries).
    #[arg(long)]
    pub signature: String,
    /// Accepted clock difference in seconds.
    #[arg(long, default_value_t = crate::signing::DEFAULT_TOLERANCE_SECS)]
    pub tolerance: u64,
}

/// A signature that did not verify: exit code 1 with a message.
#[derive(Debug, thiserror::Error)]
#[error("signature invalid: {0}")]
pub struct VerifyFailed(pub String);

/// Verifies; prints `signature valid` or fails.
pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let secret = crate::signing::ReceiverKey::parse(&args.secret)
        .map_err(|e| InputError(format!("--secret: {e}")))?;
    let body = read_stdin().context("reading the body from stdin")?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    crate::signing::verify(
        &secret,
        &args.id,
        &args.timestamp,
        &args.signature,
        &body,
        now,
        args.tolerance,
    )
    .map_err(|e| VerifyFailed(e.to_string()))?;
    println!("signature valid");
    Ok(())
}

/// Reads stdin fully.
fn read_stdin() -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    Ok(body)
}
