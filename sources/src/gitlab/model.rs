//! GitLab's issues, merge requests and notes as both the REST API and the project export give
//! them (the export's field names mapped onto the API's by `crate::gitlab_export`), so the two
//! sources build one document from one shape.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A user as GitLab embeds one (author, assignee).
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
}

impl User {
    pub fn shown(&self) -> &str {
        if self.name.is_empty() {
            &self.username
        } else {
            &self.name
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Milestone {
    #[serde(default)]
    pub title: String,
}

/// An issue or a merge request as the listings answer it.
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub iid: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub assignees: Vec<User>,
    #[serde(default)]
    pub milestone: Option<Milestone>,
    #[serde(default)]
    pub web_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Human notes: a deleted note lowers it without touching `updated_at`.
    #[serde(default)]
    pub user_notes_count: u64,
}

/// Where a diff note sits (merge request review comments).
#[derive(Debug, Clone, Deserialize)]
pub struct Position {
    #[serde(default)]
    pub new_path: Option<String>,
    #[serde(default)]
    pub new_line: Option<u64>,
}

/// A note (comment) of an issue or merge request.
#[derive(Debug, Clone, Deserialize)]
pub struct Note {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub author: Option<User>,
    pub created_at: DateTime<Utc>,
    /// Notes GitLab writes itself ("changed the description", "closed").
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub position: Option<Position>,
}

/// What a listing is of: issues or merge requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Issues,
    MergeRequests,
}

impl Kind {
    /// What `include` names (`issues`, `merge_requests`), or an error naming the one unknown.
    pub fn parse_include(include: &[String]) -> Result<Vec<Kind>, String> {
        include
            .iter()
            .map(|what| match what.as_str() {
                "issues" => Ok(Kind::Issues),
                "merge_requests" => Ok(Kind::MergeRequests),
                other => Err(format!(
                    "include: `{other}` is not one of issues, merge_requests"
                )),
            })
            .collect()
    }

    pub fn path(self) -> &'static str {
        match self {
            Kind::Issues => "issues",
            Kind::MergeRequests => "merge_requests",
        }
    }

    pub fn notes_route(self) -> &'static str {
        match self {
            Kind::Issues => "issue_notes",
            Kind::MergeRequests => "merge_request_notes",
        }
    }

    pub fn one_route(self) -> &'static str {
        match self {
            Kind::Issues => "issue",
            Kind::MergeRequests => "merge_request",
        }
    }
}
