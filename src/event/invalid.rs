//! [`InvalidEvent`]: every way an inbound message can be unprocessable, with the stable reason
//! code written to the DLQ.

use super::MAX_JSON_DEPTH;

/// Why an inbound message cannot be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("event is {size} bytes, over the {limit} byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("event is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("event JSON is nested deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    #[error("event is missing or has a wrong field: {0}")]
    BadField(String),
    #[error("invalid event_id {0:?}: 1-128 characters of letters, digits, '_', '-' or ':'")]
    BadEventId(String),
    #[error("invalid event_type {0:?}: dot-separated segments of letters, digits, '_' or '-'")]
    BadEventType(String),
    #[error("event_type {body:?} does not match the subject's type {subject:?}")]
    TypeMismatch { body: String, subject: String },
    #[error("invalid {field}: longer than 128 characters")]
    TooLong { field: &'static str },
    /// A CloudEvent without one of its required attributes.
    #[error("cloudevent is missing the required attribute {0:?}")]
    CeMissingAttribute(&'static str),
    /// A CloudEvent of a spec version other than 1.0.
    #[error("cloudevent specversion {0:?} is not supported (only \"1.0\")")]
    CeSpecVersion(String),
    /// A binary-mode header value that does not decode (bad percent-encoding or quoting).
    #[error("cloudevent header {header} is not validly encoded: {detail}")]
    CeEncoding { header: String, detail: String },
    /// The data of a CloudEvent whose content type says JSON is not JSON.
    #[error(
        "cloudevent data is not valid JSON though its content type is {content_type:?}: {detail}"
    )]
    CeDataNotJson { content_type: String, detail: String },
    /// Any other wrong CloudEvent attribute (wrong type, bad time, bad extension name).
    #[error("invalid cloudevent attribute: {0}")]
    CeAttribute(String),
}

impl InvalidEvent {
    /// The stable reason code written to the DLQ.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidEvent::TooLarge { .. } => "payload_too_large",
            InvalidEvent::InvalidJson(_) | InvalidEvent::TooDeep => "invalid_json",
            InvalidEvent::BadField(_) | InvalidEvent::TooLong { .. } => "invalid_field",
            InvalidEvent::BadEventId(_) => "invalid_event_id",
            InvalidEvent::BadEventType(_) => "invalid_event_type",
            InvalidEvent::TypeMismatch { .. } => "event_type_mismatch",
            InvalidEvent::CeMissingAttribute(_) => "cloudevent_missing_attribute",
            InvalidEvent::CeSpecVersion(_) => "cloudevent_unsupported_specversion",
            InvalidEvent::CeEncoding { .. } => "cloudevent_bad_header_encoding",
            InvalidEvent::CeDataNotJson { .. } => "cloudevent_data_not_json",
            InvalidEvent::CeAttribute(_) => "cloudevent_invalid_attribute",
        }
    }
}
