//! `[telemetry]`: OpenTelemetry span export over OTLP/HTTP ([`crate::otel`]). Off while
//! `otlp_endpoint` is empty.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, Redacted, invalid};

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base URL of a collector, e.g. `http://otel-collector:4318`; spans go to
    /// `<url>/v1/traces` (a URL already ending in `/v1/traces` is used as is). Empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Extra headers of every export request (e.g. an API key); values never printed.
    #[serde(default)]
    pub otlp_headers: BTreeMap<String, Redacted>,
}

impl TelemetryConfig {
    /// The traces URL when export is on.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.trim();
        if base.is_empty() {
            return None;
        }
        if base.trim_end_matches('/').ends_with("/v1/traces") {
            return Some(base.to_string());
        }
        Some(format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = self.traces_url() {
            match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err(invalid(
                        "telemetry.otlp_endpoint",
                        format!("{} is not an http(s) URL", super::redacted_url(&url)),
                    ));
                }
            }
        }
        if self.service_name.trim().is_empty() {
            return Err(invalid("telemetry.service_name", "must not be empty"));
        }
        for (name, value) in &self.otlp_headers {
            let name_ok = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok();
            let value_ok = reqwest::header::HeaderValue::from_str(&value.0).is_ok();
            if !name_ok || !value_ok {
                return Err(invalid(
                    "telemetry.otlp_headers",
                    format!("header {name} is not a valid HTTP header"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn export_is_off_by_default_and_the_traces_path_is_appended() {
        let config = Config::with_overrides("").unwrap();
        assert_eq!(config.telemetry.traces_url(), None);
        assert_eq!(config.telemetry.service_name, "hookline");
        let on = Config::with_overrides(
            "[telemetry]\notlp_endpoint = \"http://collector:4318/\"\n\
             otlp_headers = { x-api-key = \"k\" }",
        )
        .unwrap();
        assert_eq!(on.telemetry.traces_url().as_deref(), Some("http://collector:4318/v1/traces"));
        assert!(!format!("{:?}", on.telemetry).contains("\"k\""), "header values are redacted");
    }

    #[test]
    fn bad_telemetry_values_name_the_key() {
        for (toml, key) in [
            ("otlp_endpoint = \"collector:4318\"", "telemetry.otlp_endpoint"),
            ("service_name = \" \"", "telemetry.service_name"),
            ("otlp_headers = { \"bad name\" = \"v\" }", "telemetry.otlp_headers"),
        ] {
            let err = Config::with_overrides(&format!("[telemetry]\n{toml}")).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    // figment::Jail's closure returns figment's own (large) error type: not ours to shrink.
    #[allow(clippy::result_large_err)]
    fn export_headers_can_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOOKLINE_TELEMETRY__OTLP_ENDPOINT", "https://otlp.example:4318");
            jail.set_env("HOOKLINE_TELEMETRY__OTLP_HEADERS", "{x-api-key=\"s3cret\"}");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let headers = &config.telemetry.otlp_headers;
            assert_eq!(headers.get("x-api-key").map(|v| v.0.as_str()), Some("s3cret"));
            Ok(())
        });
    }
}
