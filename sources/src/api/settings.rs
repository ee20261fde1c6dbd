//! The settings every API source checks the same way when it is built: its credentials from
//! the environment and its page cap. One home, so a new source's messages read like Slack's.

use kass_pipeline::secret::Secret;

/// The credentials in the variable `env` (`what` says what they are, for the message); an
/// error naming the variable, never a value, when it is unset or unusable.
pub fn credentials(env: &str, what: &str) -> Result<Secret, String> {
    Secret::from_env(env)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{env} is not set ({what})"))
}

/// `max_pages`, which must allow at least one page.
pub fn max_pages(max_pages: usize) -> Result<usize, String> {
    if max_pages == 0 {
        return Err("max_pages must be at least 1".to_string());
    }
    Ok(max_pages)
}
