//! The CloudEvents webhook validation handshake (cloudevents/spec `http-webhook.md`, section 4
//! "Abuse Protection") as a subscription records it: whether it asks for one (`validation`),
//! how the last one went (`validation_status`), the rate the endpoint granted, and the one write
//! that stores a handshake's verdict. The request itself is [`crate::pipeline::handshake`]'s;
//! when it runs is the operations layer's ([`crate::ops`]).
//!
//! Invariant, kept by [`reconcile`] on every write: a subscription with `validation:
//! cloudevents` is active only while its `validation_status` is `allowed`; otherwise it is
//! inactive and its `disabled_reason` says why (`handshake pending`, `handshake refused: ...`).
//! A new url, or switching validation on, makes the status `pending` again.

use serde::{Deserialize, Serialize};

use super::{OWN_CHANGE_TRIES, Subscription, SubscriptionError, SubscriptionStore, now};

/// Whether a subscription's endpoint must agree to deliveries first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    /// No handshake (the default).
    #[default]
    None,
    /// The CloudEvents webhook validation handshake: `OPTIONS <url>` with
    /// `WebHook-Request-Origin` before first use; deliveries carry `WebHook-Request-Origin`.
    Cloudevents,
}

/// How the handshake of a subscription with validation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    /// Not done (or not finished) since the url or the validation changed.
    Pending,
    /// The endpoint answered 2xx with a matching `WebHook-Allowed-Origin`.
    Allowed,
    /// The endpoint did not agree (the reason is in `disabled_reason`).
    Refused,
}

/// A subscription's handshake settings and state (shown flat in the subscription).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct Handshake {
    /// `none` (default) or `cloudevents`.
    pub validation: Validation,
    /// Absent when `validation` is `none`.
    #[serde(rename = "validation_status", skip_serializing_if = "Option::is_none")]
    pub status: Option<ValidationStatus>,
    /// Requests per minute the endpoint granted (`WebHook-Allowed-Rate`); absent: no limit
    /// granted (`*` or no header). Applied on top of `max_rps`.
    #[serde(rename = "allowed_rate_per_minute", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    pub allowed_rate: Option<u32>,
}

/// What one validation request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliveries allowed, at most `rate` per minute (`None`: no limit granted).
    Allowed { rate: Option<u32> },
    /// Not allowed; why (lowercase, names the header or status at fault).
    Refused(String),
}

/// `disabled_reason` of a subscription waiting for its handshake.
pub const PENDING_REASON: &str = "handshake pending";
/// Prefix of `disabled_reason` of a subscription whose endpoint refused.
pub const REFUSED_PREFIX: &str = "handshake refused: ";

impl ValidationStatus {
    /// The status as shown (`pending`, `allowed`, `refused`).
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::Pending => "pending",
            ValidationStatus::Allowed => "allowed",
            ValidationStatus::Refused => "refused",
        }
    }
}

impl Handshake {
    /// The state of a new subscription asking for `validation`.
    pub fn new(validation: Validation) -> Handshake {
        let status = (validation == Validation::Cloudevents).then_some(ValidationStatus::Pending);
        Handshake { validation, status, allowed_rate: None }
    }

    /// Whether deliveries must wait for (another) handshake.
    pub fn blocks_delivery(&self) -> bool {
        self.validation == Validation::Cloudevents && self.status != Some(ValidationStatus::Allowed)
    }
}

impl Subscription {
    /// Whether it is inactive because of its handshake (pending or refused), not by choice.
    pub fn held_by_handshake(&self) -> bool {
        self.disabled_reason
            .as_deref()
            .is_some_and(|r| r == PENDING_REASON || r.starts_with(REFUSED_PREFIX))
    }

    /// The shortest spacing between two requests to the endpoint: its `max_rps` (or
    /// `default_rps`, the configured one) and the rate its handshake granted, whichever is
    /// stricter; zero means unlimited. Never below 1 ms when limited.
    pub fn min_request_interval(&self, default_rps: u32) -> std::time::Duration {
        let by_rps = 1000u32.checked_div(self.max_rps.unwrap_or(default_rps));
        let by_grant = self.handshake.allowed_rate.and_then(|n| 60_000u32.checked_div(n));
        match by_rps.into_iter().chain(by_grant).max() {
            Some(ms) => std::time::Duration::from_millis(u64::from(ms.max(1))),
            None => std::time::Duration::ZERO,
        }
    }
}

/// Keeps the invariant of this module on a write of `new` over `old`: a new url or validation
/// switched on makes the status `pending`; validation switched off forgets the handshake; a
/// subscription whose handshake has not succeeded is inactive, with the reason.
pub(super) fn reconcile(old: &Subscription, new: &mut Subscription) {
    match new.handshake.validation {
        Validation::None => {
            if new.handshake.status.is_some() {
                if new.held_by_handshake() {
                    new.disabled_reason = None;
                }
                new.handshake = Handshake::default();
            }
        }
        Validation::Cloudevents => {
            if old.handshake.validation != Validation::Cloudevents
                || old.url != new.url
                || new.handshake.status.is_none()
            {
                new.handshake = Handshake::new(Validation::Cloudevents);
            }
            if new.handshake.blocks_delivery() && (new.active || new.held_by_handshake()) {
                new.active = false;
                if new.handshake.status == Some(ValidationStatus::Pending) {
                    new.disabled_reason = Some(PENDING_REASON.to_string());
                } else if !new.held_by_handshake() {
                    new.disabled_reason = Some(format!("{REFUSED_PREFIX}see validation_status"));
                }
            }
        }
    }
}

impl SubscriptionStore {
    /// Stores the verdict of a handshake made with `url`: allowed sets the granted rate (and
    /// activates when `activate`), refused keeps it inactive with the reason. Ignored (the
    /// current copy returned) when the url or the validation changed meanwhile: that change
    /// asks for its own handshake.
    pub async fn record_handshake(
        &self,
        id: &str,
        url: &str,
        verdict: &Verdict,
        activate: bool,
    ) -> Result<Subscription, SubscriptionError> {
        let mut tries = 0;
        loop {
            let old = self.require(id).await?;
            if old.url != url || old.handshake.validation != Validation::Cloudevents {
                return Ok(old);
            }
            let mut new = Subscription { updated_at: now(), ..old.clone() };
            match verdict {
                Verdict::Allowed { rate } => {
                    new.handshake.status = Some(ValidationStatus::Allowed);
                    new.handshake.allowed_rate = *rate;
                    if new.held_by_handshake() {
                        new.disabled_reason = None;
                    }
                    if activate {
                        new.active = true;
                        new.disabled_reason = None;
                    }
                }
                Verdict::Refused(why) => {
                    new.handshake.status = Some(ValidationStatus::Refused);
                    new.handshake.allowed_rate = None;
                    new.active = false;
                    new.disabled_reason = Some(format!("{REFUSED_PREFIX}{why}"));
                }
            }
            match self.write(&old, new).await {
                Err(SubscriptionError::Conflict(_)) if tries + 1 < OWN_CHANGE_TRIES => tries += 1,
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sub(validation: Validation, active: bool) -> Subscription {
        let mut s = super::super::model::tests::sub(&[], None);
        s.handshake = Handshake::new(validation);
        s.active = active;
        s
    }

    #[test]
    fn a_new_url_or_switching_validation_on_makes_it_pending_and_inactive() {
        let mut old = sub(Validation::Cloudevents, true);
        old.handshake.status = Some(ValidationStatus::Allowed);
        old.handshake.allowed_rate = Some(60);
        let mut same = old.clone();
        reconcile(&old, &mut same);
        assert_eq!(same, old, "nothing changed: still allowed and active");

        let mut moved = Subscription { url: "http://y".into(), ..old.clone() };
        reconcile(&old, &mut moved);
        assert_eq!(moved.handshake.status, Some(ValidationStatus::Pending));
        assert_eq!(moved.handshake.allowed_rate, None);
        assert_eq!((moved.active, moved.disabled_reason.as_deref()), (false, Some(PENDING_REASON)));

        let plain = sub(Validation::None, true);
        let mut on = plain.clone();
        on.handshake.validation = Validation::Cloudevents;
        reconcile(&plain, &mut on);
        assert!(!on.active && on.held_by_handshake());

        let mut off = moved.clone();
        off.handshake.validation = Validation::None;
        reconcile(&moved, &mut off);
        assert_eq!(off.handshake, Handshake::default());
        assert_eq!((off.active, off.disabled_reason), (false, None), "stays inactive, no reason");
    }

    #[test]
    fn activating_before_the_handshake_succeeded_keeps_it_inactive_with_the_reason() {
        let mut refused = sub(Validation::Cloudevents, false);
        refused.handshake.status = Some(ValidationStatus::Refused);
        refused.disabled_reason = Some(format!("{REFUSED_PREFIX}http status 405"));
        let mut activated = Subscription { active: true, disabled_reason: None, ..refused.clone() };
        reconcile(&refused, &mut activated);
        assert!(!activated.active);
        assert!(activated.disabled_reason.unwrap().starts_with(REFUSED_PREFIX));
        let chosen = sub(Validation::Cloudevents, false);
        let mut kept = chosen.clone();
        kept.disabled_reason = None;
        reconcile(&chosen, &mut kept);
        assert!(!kept.active);
    }

    #[test]
    fn the_stricter_of_max_rps_and_the_granted_rate_spaces_requests() {
        let mut s = sub(Validation::Cloudevents, true);
        assert_eq!(s.min_request_interval(0), Duration::ZERO, "no limit at all");
        assert_eq!(s.min_request_interval(4), Duration::from_millis(250));
        s.handshake.allowed_rate = Some(120);
        assert_eq!(s.min_request_interval(0), Duration::from_millis(500));
        assert_eq!(s.min_request_interval(4), Duration::from_millis(500), "the grant is stricter");
        s.max_rps = Some(1);
        assert_eq!(s.min_request_interval(4), Duration::from_millis(1000), "max_rps is stricter");
        s.max_rps = None;
        s.handshake.allowed_rate = Some(1_000_000);
        assert_eq!(s.min_request_interval(0), Duration::from_millis(1), "at least 1 ms");
    }
}
