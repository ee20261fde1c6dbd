//! The mass-deletion guard every incremental source applies before its tombstones leave.
//!
//! A source that finds documents gone sends tombstones, and the embed half deletes what they
//! name. A misconfiguration (a channel glob typed wrong, a token that lost a scope) or an API
//! answering wrong (a listing that comes back empty) can make a large part of a workspace, or
//! all of one channel, look gone at once; deleting it would empty the chatbot's knowledge
//! until someone notices. So the guard looks at each scope of the source (a channel, a
//! project) and at the source as a whole: a scope that would lose more than
//! `max_deletion_share` of the documents it held deletes nothing this run, and a run that
//! would delete more than that share of the source's documents deletes nothing at all. It
//! says why, and waits for a person to allow it (`kass fetch --allow-deletions`).
//!
//! What the guard withholds, the source must check again before it ever deletes it: a
//! withheld document is deleted only by a later run whose complete read of its scope does
//! not find it, never on the strength of the run that withheld it.

use std::collections::BTreeSet;

use kass_pipeline::telemetry;

/// `max_deletion_share` of a source, and whether this run was allowed past it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeletionGuard {
    /// The largest share (0 to 1) of a scope's documents, and of the source's, one run may
    /// delete.
    pub max_share: f64,
    /// `--allow-deletions`: this run deletes whatever its complete reads found gone.
    pub allowed: bool,
}

/// One scope of a source as a run leaves it: documents found gone, of those it held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScopeDeletions<'a> {
    pub scope: &'a str,
    pub gone: usize,
    pub held: usize,
}

impl DeletionGuard {
    /// The guard of a source whose `max_deletion_share` is `max_share` (checked: 0 to 1);
    /// `allowed` is the run's `--allow-deletions`.
    pub fn new(max_share: f64, allowed: bool) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&max_share) {
            return Err(format!(
                "max_deletion_share must be between 0 and 1, not {max_share}"
            ));
        }
        Ok(Self { max_share, allowed })
    }

    /// The scopes whose deletions are withheld this run: each scope losing more than
    /// `max_share` of what it held, and every scope with deletions when the source as a whole
    /// would (`scopes` lists every scope the source holds, those with nothing gone included).
    /// Logs why and counts the withheld tombstones in
    /// `kass_source_deletions_withheld_total`.
    pub fn withheld<'a>(&self, source: &str, scopes: &[ScopeDeletions<'a>]) -> BTreeSet<&'a str> {
        let gone: usize = scopes.iter().map(|s| s.gone).sum();
        if gone == 0 || self.allowed {
            return BTreeSet::new();
        }
        let held: usize = scopes.iter().map(|s| s.held).sum();
        let mut withheld = BTreeSet::new();
        if self.exceeds(gone, held) {
            tracing::warn!(
                source,
                gone,
                held,
                share = %percent(gone, held),
                max_share = %percent_of(self.max_share),
                "this run would delete more than the source's max_deletion_share of its documents; nothing deleted. Check the source's configuration and access, then run `kass fetch --allow-deletions` to delete what the next complete read still finds gone"
            );
            withheld.extend(scopes.iter().filter(|s| s.gone > 0).map(|s| s.scope));
        } else {
            for scope in scopes.iter().filter(|s| self.exceeds(s.gone, s.held)) {
                tracing::warn!(
                    source,
                    scope = scope.scope,
                    gone = scope.gone,
                    held = scope.held,
                    share = %percent(scope.gone, scope.held),
                    max_share = %percent_of(self.max_share),
                    "this run would delete more than max_deletion_share of one scope's documents; nothing of that scope deleted. Check the scope, then run `kass fetch --allow-deletions` to delete what the next complete read still finds gone"
                );
                withheld.insert(scope.scope);
            }
        }
        let count: usize = scopes
            .iter()
            .filter(|s| withheld.contains(s.scope))
            .map(|s| s.gone)
            .sum();
        if count > 0 {
            telemetry::source_deletions_withheld(source, count);
        }
        withheld
    }

    fn exceeds(&self, gone: usize, held: usize) -> bool {
        gone > 0 && gone as f64 / held.max(1) as f64 > self.max_share
    }
}

fn percent(part: usize, whole: usize) -> String {
    percent_of(part as f64 / whole.max(1) as f64)
}

fn percent_of(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(scope: &str, gone: usize, held: usize) -> ScopeDeletions<'_> {
        ScopeDeletions { scope, gone, held }
    }

    #[test]
    fn a_large_share_of_the_source_is_withheld_unless_allowed() {
        let guard = DeletionGuard {
            max_share: 0.2,
            allowed: false,
        };
        assert!(guard.withheld("s", &[scope("a", 0, 0)]).is_empty());
        assert!(guard
            .withheld("s", &[scope("a", 1, 5), scope("b", 1, 5)])
            .is_empty());
        assert_eq!(
            guard.withheld("s", &[scope("a", 3, 5), scope("b", 1, 5), scope("c", 0, 5)]),
            BTreeSet::from(["a", "b"]),
            "4 of 15 is over 20%: every scope with deletions waits"
        );
        assert_eq!(
            guard.withheld("s", &[scope("a", 1, 0)]),
            BTreeSet::from(["a"]),
            "nothing held: any deletion is all of it"
        );
        let allowed = DeletionGuard {
            allowed: true,
            ..guard
        };
        assert!(allowed.withheld("s", &[scope("a", 10, 10)]).is_empty());
    }

    #[test]
    fn one_scope_losing_a_large_share_is_withheld_alone() {
        let guard = DeletionGuard {
            max_share: 0.2,
            allowed: false,
        };
        // 4 of 50 is 8% of the source, but 40% of channel a.
        let scopes = [scope("a", 4, 10), scope("b", 1, 40)];
        assert_eq!(guard.withheld("s", &scopes), BTreeSet::from(["a"]));
        let allowed = DeletionGuard {
            allowed: true,
            ..guard
        };
        assert!(allowed.withheld("s", &scopes).is_empty());
    }
}
