//! Which (event, subscription) pairs a scenario expects the receiver to have seen, and which of
//! them it never saw.
//!
//! A subscription is its endpoint path (`/s/<scenario>-<i>`), an event its `webhook-id` (the
//! event id, `<tag>-<n>`). "Lost" is the set of expected pairs never received, never a
//! difference of counts: a duplicate, or a pair nobody expected (a late warm-up event, a
//! delivery to the wrong endpoint), must not hide a pair that never arrived.
//!
//! The orchestrator builds an [`Expected`], the receiver (which holds the received set) answers
//! `POST /_bench/missing` with the [`Loss`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// How many lost pairs a [`Loss`] names (the count is always exact).
const SAMPLE: usize = 10;

/// The event ids of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Events {
    /// `<tag>-<n>` for `from <= n < to`, as [`crate::load::Publisher`] names them.
    Range { tag: String, from: u64, to: u64 },
    /// These ids.
    List(Vec<String>),
}

impl Events {
    /// Events `<tag>-<n>` for n in `range`.
    pub fn range(tag: &str, range: std::ops::Range<u64>) -> Events {
        Events::Range { tag: tag.to_string(), from: range.start, to: range.end }
    }

    fn len(&self) -> u64 {
        match self {
            Events::Range { from, to, .. } => to.saturating_sub(*from),
            Events::List(ids) => ids.len() as u64,
        }
    }

    fn ids(&self) -> Box<dyn Iterator<Item = String> + '_> {
        match self {
            Events::Range { tag, from, to } => {
                Box::new((*from..*to).map(move |n| format!("{tag}-{n}")))
            }
            Events::List(ids) => Box::new(ids.iter().cloned()),
        }
    }

    fn contains(&self, id: &str) -> bool {
        match self {
            Events::Range { tag, from, to } => id
                .strip_prefix(tag.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| (*from..*to).contains(&n)),
            Events::List(ids) => ids.iter().any(|i| i == id),
        }
    }
}

/// Every pair of `events` x `paths`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub paths: Vec<String>,
    pub events: Events,
}

/// The expected pairs never received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    /// Expected pairs never received.
    pub lost: u64,
    /// The first few of them, `(path, event id)`.
    pub sample: Vec<(String, String)>,
    /// Received pairs on the expected paths that were not expected (reported, not a failure).
    pub unexpected: u64,
}

impl Expected {
    /// Events `events` delivered to each of `paths`.
    pub fn new(paths: impl IntoIterator<Item = String>, events: Events) -> Expected {
        Expected { paths: paths.into_iter().collect(), events }
    }

    /// How many pairs are expected.
    pub fn len(&self) -> u64 {
        self.events.len() * self.paths.len() as u64
    }

    /// The loss, given whether a pair was received and every pair that was.
    pub fn loss<'a>(
        &self,
        received: impl Fn(&str, &str) -> bool,
        all_received: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Loss {
        let mut loss = Loss::default();
        for path in &self.paths {
            for id in self.events.ids() {
                if !received(path, &id) {
                    loss.lost += 1;
                    if loss.sample.len() < SAMPLE {
                        loss.sample.push((path.clone(), id));
                    }
                }
            }
        }
        // A baseline lists ~10^5-10^6 ids: index them, or this check is quadratic.
        let listed: HashSet<&str> = match &self.events {
            Events::List(ids) => ids.iter().map(String::as_str).collect(),
            Events::Range { .. } => HashSet::new(),
        };
        let expected_id = |id: &str| match &self.events {
            Events::List(_) => listed.contains(id),
            range => range.contains(id),
        };
        loss.unexpected = all_received
            .filter(|(path, id)| self.paths.iter().any(|p| p == path) && !expected_id(id))
            .count() as u64;
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expected: &Expected, received: &[(&str, &str)]) -> Loss {
        let set: HashSet<(String, String)> =
            received.iter().map(|(p, i)| (p.to_string(), i.to_string())).collect();
        expected.loss(
            |p, i| set.contains(&(p.to_string(), i.to_string())),
            received.iter().map(|(p, i)| (*p, *i)),
        )
    }

    fn two_by_two() -> Expected {
        Expected::new(["/s/a".to_string(), "/s/b".to_string()], Events::range("ev", 0..2))
    }

    #[test]
    fn every_expected_pair_received_is_no_loss() {
        let loss = check(
            &two_by_two(),
            &[("/s/a", "ev-0"), ("/s/a", "ev-1"), ("/s/b", "ev-0"), ("/s/b", "ev-1")],
        );
        assert_eq!(loss, Loss::default());
    }

    #[test]
    fn a_pair_never_received_is_lost_even_when_an_unexpected_pair_makes_the_count_match() {
        // Four pairs received, four expected: a difference of counts says nothing was lost.
        let loss = check(
            &two_by_two(),
            &[("/s/a", "ev-0"), ("/s/a", "ev-1"), ("/s/b", "ev-0"), ("/s/b", "warm-7")],
        );
        assert_eq!(loss.lost, 1);
        assert_eq!(loss.sample, vec![("/s/b".to_string(), "ev-1".to_string())]);
        assert_eq!(loss.unexpected, 1);
    }

    #[test]
    fn a_pair_received_on_the_wrong_path_does_not_count_for_the_right_one() {
        let expected =
            Expected::new(["/s/a".to_string()], Events::List(vec!["x".into(), "y".into()]));
        let loss = check(&expected, &[("/s/a", "x"), ("/s/other", "y")]);
        assert_eq!((loss.lost, loss.unexpected), (1, 0));
    }

    #[test]
    fn range_ids_match_only_their_tag_and_bounds() {
        let events = Events::range("ev", 5..7);
        assert!(events.contains("ev-5") && events.contains("ev-6"));
        assert!(!events.contains("ev-7") && !events.contains("ev-4"));
        assert!(!events.contains("evx-5") && !events.contains("ev5") && !events.contains("ev-"));
        assert_eq!(two_by_two().len(), 4);
    }
}
