//! The mass-deletion guard every incremental source applies before its tombstones leave.
//!
//! A source that finds documents gone sends tombstones, and the embed half deletes what they
//! name. A misconfiguration (a channel glob typed wrong, a token that lost a scope) can make
//! a large part of a workspace look gone at once; deleting it would empty the chatbot's
//! knowledge until someone notices. So a run that would delete more than a share of the
//! documents the source held deletes nothing, says why, and waits for a person to allow it
//! (`kass fetch --allow-deletions`).

use kass_pipeline::telemetry;

/// `max_deletion_share` of a source, and whether this run was allowed past it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeletionGuard {
    /// The largest share (0 to 1) of the source's documents one run may delete.
    pub max_share: f64,
    /// `--allow-deletions`: this run deletes whatever it found gone.
    pub allowed: bool,
}

impl DeletionGuard {
    /// Whether `gone` tombstones out of `held` documents may be sent. When not, logs why and
    /// counts them in `kass_source_deletions_withheld_total`.
    pub fn permits(&self, source: &str, gone: usize, held: usize) -> bool {
        if gone == 0 || self.allowed {
            return true;
        }
        let share = gone as f64 / held.max(1) as f64;
        if share <= self.max_share {
            return true;
        }
        tracing::warn!(
            source,
            gone,
            held,
            share = format!("{:.0}%", share * 100.0),
            max_share = format!("{:.0}%", self.max_share * 100.0),
            "this run would delete more than the source's max_deletion_share of its documents; nothing deleted. Check the source's configuration and access, then run `kass fetch --allow-deletions` to delete them"
        );
        telemetry::source_deletions_withheld(source, gone);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_share_is_withheld_unless_allowed() {
        let guard = DeletionGuard {
            max_share: 0.2,
            allowed: false,
        };
        assert!(guard.permits("s", 0, 0));
        assert!(guard.permits("s", 2, 10));
        assert!(!guard.permits("s", 3, 10));
        assert!(
            !guard.permits("s", 1, 0),
            "nothing held: any deletion is all of it"
        );
        let allowed = DeletionGuard {
            allowed: true,
            ..guard
        };
        assert!(allowed.permits("s", 10, 10));
    }
}
