//! The per-endpoint options a subscription's owner sets beyond where and what: its payload
//! filter and its retry schedule, as validated and as shown (the custom headers have their own
//! file, `headers`).

use std::sync::Arc;

use serde::Serialize;

use super::SubscriptionError;
use crate::payload_filter::PayloadFilter;

/// A retry schedule as text (`"0s"`, `"1m"`, ...), the way `retry.schedule` is written.
pub fn schedule_strings(schedule: &[std::time::Duration]) -> Vec<String> {
    schedule.iter().map(|d| humantime::format_duration(*d).to_string()).collect()
}

pub(super) fn filter_document<S: serde::Serializer>(
    filter: &Option<Arc<PayloadFilter>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    filter.as_ref().map(|f| f.document()).serialize(s)
}

/// A subscription's `filter`, compiled (`{}`: none).
pub(super) fn compile_filter(
    doc: &serde_json::Value,
) -> Result<Option<Arc<PayloadFilter>>, SubscriptionError> {
    Ok(PayloadFilter::compile(doc)?.map(Arc::new))
}

pub(super) fn schedule_text<S: serde::Serializer>(
    schedule: &Option<Vec<std::time::Duration>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    schedule.as_deref().map(schedule_strings).serialize(s)
}

/// A subscription's `retry_schedule` (validated as `retry.schedule` is); `[]` means none.
pub(super) fn validate_schedule(
    texts: &[String],
) -> Result<Option<Vec<std::time::Duration>>, SubscriptionError> {
    if texts.is_empty() {
        return Ok(None);
    }
    crate::config::parse_schedule(texts).map(Some).map_err(SubscriptionError::BadRetrySchedule)
}
