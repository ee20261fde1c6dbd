//! A user's name as documents show it, the same from `users.json` and `users.list`.

use serde::Deserialize;

use super::message::{first_name, Profile};

/// A user as `users.json` (export) and `users.list` (Web API) hold it; only what names them.
#[derive(Debug, Deserialize)]
pub(crate) struct SlackUser {
    pub id: String,
    name: Option<String>,
    real_name: Option<String>,
    profile: Option<Profile>,
}

impl SlackUser {
    /// The name people know: display name, then real name, then the handle.
    pub fn shown_name(&self) -> Option<&str> {
        first_name([
            self.profile
                .as_ref()
                .and_then(|p| p.display_name.as_deref()),
            self.profile.as_ref().and_then(|p| p.real_name.as_deref()),
            self.real_name.as_deref(),
            self.name.as_deref(),
        ])
    }
}
