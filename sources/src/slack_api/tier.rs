//! Slack's rate-limit tiers as the source uses them: requests per minute per method and the
//! largest page a method serves.
//!
//! Slack limits each Web API method per workspace. Internal (customer-built) and Marketplace
//! apps get Tier 3 (about 50 requests per minute) for `conversations.history` and
//! `conversations.replies`, with pages of up to 200 messages recommended. Since 2025 (for
//! existing installs since March 2026), apps distributed outside the Marketplace get 1 request
//! per minute and at most 15 messages per page for those two methods. `conversations.list`
//! and `users.list` stay Tier 2 (20 per minute) for both.

use serde::Deserialize;

use crate::api::Tier;

pub(super) const HISTORY: &str = "conversations.history";
pub(super) const REPLIES: &str = "conversations.replies";
pub(super) const LIST: &str = "conversations.list";
pub(super) const USERS: &str = "users.list";

/// Which limits the Slack app is under (`rate_tier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateTier {
    /// A customer-built app installed in its own workspace, or a Marketplace app: Tier 3.
    #[default]
    Internal,
    /// An app distributed outside the Slack Marketplace: 1 request per minute and 15
    /// messages per page for history and replies.
    NonMarketplace,
}

impl RateTier {
    /// Requests per minute of every method the source calls.
    pub(super) fn limits(self) -> Tier {
        let messages = match self {
            RateTier::Internal => 50.0,
            RateTier::NonMarketplace => 1.0,
        };
        Tier::new([
            (HISTORY, messages),
            (REPLIES, messages),
            (LIST, 20.0),
            (USERS, 20.0),
        ])
    }

    /// The most messages one page of history or replies holds.
    pub(super) fn page_max(self) -> usize {
        match self {
            RateTier::Internal => 200,
            RateTier::NonMarketplace => 15,
        }
    }
}
