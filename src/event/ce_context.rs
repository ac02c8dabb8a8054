//! [`CeContext`]: the CloudEvents attributes an event keeps when it was published as a
//! CloudEvent (read and written by [`crate::cloudevents`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The attributes of a CloudEvent that have no place of their own in [`WebhookEvent`] (id,
/// type, source, time and the `tenantid` extension live in the event's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeContext {
    pub specversion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Extension attributes other than `tenantid`: strings, integers or booleans.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// The data was not text: the payload holds it as a base64 string.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_base64: bool,
}

impl CeContext {
    /// The context of a new CloudEvent with JSON data and no optional attributes.
    pub fn json() -> CeContext {
        CeContext {
            specversion: "1.0".to_string(),
            datacontenttype: Some("application/json".to_string()),
            dataschema: None,
            subject: None,
            extensions: BTreeMap::new(),
            data_base64: false,
        }
    }
}
