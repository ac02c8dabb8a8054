//! `[secrets]`: the keys that seal subscriptions' signing secrets at rest, parsed here into a
//! [`SecretBox`] (see [`crate::secret_box`] for the stored form). Key material never appears in
//! `Debug` or in an error message.

use serde::Deserialize;

use super::{ConfigError, Redacted, invalid};
use crate::secret_box::{KeyError, KeySpec, SecretBox};

/// `[secrets]`: encryption of signing secrets at rest (off when both keys are empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// The current key, `<key id>:<base64 of 32 bytes>`: seals every secret written from now
    /// on. Empty: secrets are written plain.
    pub encryption_key: Redacted,
    /// Older keys in the same form, still accepted for reading (so keys can rotate).
    pub decryption_keys: Vec<Redacted>,
}

impl SecretsConfig {
    /// The keys, parsed; the error names the key that is wrong.
    pub fn secret_box(&self) -> Result<SecretBox, ConfigError> {
        let current = match self.encryption_key.0.trim() {
            "" => None,
            text => Some(KeySpec::parse(text).map_err(|e| bad("secrets.encryption_key", e))?),
        };
        let older = self
            .decryption_keys
            .iter()
            .map(|k| KeySpec::parse(&k.0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("secrets.decryption_keys", e))?;
        SecretBox::new(current, older).map_err(|e| bad("secrets.decryption_keys", e))
    }

    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.secret_box().map(drop)
    }
}

fn bad(key: &'static str, e: KeyError) -> ConfigError {
    invalid(key, e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn load(section: &str) -> Result<Config, String> {
        Config::with_overrides(&format!("[secrets]\n{section}")).map_err(|e| e.to_string())
    }

    #[test]
    fn no_key_by_default_and_keys_load_into_a_secret_box() {
        let config = load("").unwrap();
        assert_eq!(config.secrets.secret_box().unwrap().current_key_id(), None);
        let config =
            load(&format!("encryption_key = \"{K2}\"\ndecryption_keys = [\"{K1}\"]")).unwrap();
        assert_eq!(config.secrets.secret_box().unwrap().current_key_id(), Some("k2"));
    }

    #[test]
    fn a_bad_key_is_refused_naming_the_config_key_and_not_the_material() {
        let material = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let cases = [
            (format!("encryption_key = \"{material}\""), "secrets.encryption_key", "key id"),
            ("encryption_key = \"k1:%%%\"".to_string(), "secrets.encryption_key", "base64"),
            ("encryption_key = \"k1:AAEC\"".to_string(), "secrets.encryption_key", "3 bytes"),
            (format!("encryption_key = \"k.1:{material}\""), "secrets.encryption_key", "key id"),
            (format!("decryption_keys = [\"{material}\"]"), "secrets.decryption_keys", "key id"),
            (
                format!("encryption_key = \"{K1}\"\ndecryption_keys = [\"k1:{}\"]", &K2[3..]),
                "secrets.decryption_keys",
                "k1 is given twice",
            ),
        ];
        for (section, key, why) in cases {
            let err = load(&section).unwrap_err();
            assert!(err.contains(key) && err.contains(why), "{section}: {err}");
            assert!(!err.contains(material) && !err.contains(&K2[3..]), "{err}");
        }
    }

    #[test]
    fn debug_redacts_the_keys() {
        let config =
            load(&format!("encryption_key = \"{K1}\"\ndecryption_keys = [\"{K2}\"]")).unwrap();
        let text = format!("{config:?} {:?}", config.secrets.secret_box().unwrap());
        assert!(!text.contains(&K1[3..]) && !text.contains(&K2[3..]), "{text}");
    }

    #[test]
    // figment::Jail's closure returns figment's own (large) error type: not ours to shrink.
    #[allow(clippy::result_large_err)]
    fn keys_come_from_the_environment_too() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOOKLINE_SECRETS__ENCRYPTION_KEY", K2);
            jail.set_env("HOOKLINE_SECRETS__DECRYPTION_KEYS", format!("[\"{K1}\"]"));
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let sb = config.secrets.secret_box().map_err(|e| e.to_string())?;
            assert_eq!(sb.current_key_id(), Some("k2"));
            assert_eq!(
                format!("{sb:?}"),
                "SecretBox { current_key_id: Some(\"k2\"), key_ids: [\"k2\", \"k1\"] }"
            );
            Ok(())
        });
    }
}
