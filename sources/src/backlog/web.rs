//! The Backlog API v2 calls the source makes, on the shared API client: each under a route
//! label (`projects`, `issues`, `issue_comments`, `activities`, `wikis`, `wiki`, `documents`,
//! `document`, ...), so keys and ids in a path never become a metric label, and each route
//! counted under the request type Backlog's rate limits count it by ([`request_type`]).
//!
//! Backlog pages two ways: listings by `offset` and `count` (at most 100), the end being a
//! page shorter than `count` (Backlog names no next page and no total); comments and
//! activities by id (`minId`, ascending), the next page starting after the last id read.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::api::paging::{cursor_pages, numbered_pages, Page, PageError};
use crate::api::{ApiClient, ApiError};

/// Records per page: Backlog's maximum.
const COUNT: u32 = 100;

/// The request type Backlog counts a route's requests under (per user, per minute): the issue
/// listing is a search by conditions, every other GET a read.
pub(super) fn request_type(route: &str) -> &'static str {
    match route {
        "issues" => "search",
        _ => "read",
    }
}

/// A project as `GET /api/v2/projects` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Project {
    pub id: u64,
    pub project_key: String,
    #[serde(default)]
    pub name: String,
    /// `markdown` or `backlog`: the notation of the project's texts.
    #[serde(default)]
    pub text_formatting_rule: String,
}

/// Something with a name (issue type, status, priority, category, milestone, user).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Named {
    #[serde(default)]
    pub name: String,
}

/// An issue as `GET /api/v2/issues` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Issue {
    pub issue_key: String,
    pub key_id: u64,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub issue_type: Option<Named>,
    #[serde(default)]
    pub status: Option<Named>,
    #[serde(default)]
    pub priority: Option<Named>,
    #[serde(default)]
    pub assignee: Option<Named>,
    #[serde(default)]
    pub category: Vec<Named>,
    #[serde(default)]
    pub milestone: Vec<Named>,
    #[serde(default)]
    pub created_user: Option<Named>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// A comment of an issue; `content` is empty (or null) on a comment that only records
/// changes (`changeLog`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Comment {
    pub id: u64,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub created_user: Option<Named>,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub updated: Option<DateTime<Utc>>,
}

/// An entry of a project's activity feed: its `type` and what it is about (`content.id`: the
/// issue's or wiki page's id).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Activity {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: u32,
    #[serde(default)]
    pub content: Value,
}

/// A wiki page as the listing gives it (no content) or `GET /api/v2/wikis/:id` (with it).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WikiPage {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub content: Option<String>,
    pub updated: DateTime<Utc>,
}

/// A document as the listing gives it, or `GET /api/v2/documents/:id` with its `plain` text.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DocumentPage {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub plain: Option<String>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct BacklogWeb {
    pub client: ApiClient,
    pub max_pages: usize,
    /// The space's root URL, for the links of documents.
    pub root: String,
}

impl BacklogWeb {
    /// Every project the key can read.
    pub async fn projects(&self) -> Result<Vec<Project>, ApiError> {
        let answer = self
            .client
            .get_route("projects", "projects", &[("archived", "false")])
            .await?;
        self.client.decode("projects", &answer)
    }

    /// One project by its key.
    pub async fn project(&self, key: &str) -> Result<Project, ApiError> {
        let answer = self
            .client
            .get_route("project", &format!("projects/{}", encode(key)), &[])
            .await?;
        self.client.decode("project", &answer)
    }

    /// The project's issues updated since `since` (a day: Backlog filters by date only),
    /// most recently updated first.
    pub async fn issues(&self, project: u64, since: Option<&str>) -> Result<Vec<Issue>, ApiError> {
        let project = project.to_string();
        let mut query = vec![
            ("projectId[]", project.as_str()),
            ("sort", "updated"),
            ("order", "desc"),
        ];
        if let Some(since) = since {
            query.push(("updatedSince", since));
        }
        self.offset_pages("issues", "issues", &query).await
    }

    /// One issue; `None` when Backlog answers 404 (deleted).
    pub async fn issue(&self, key: &str) -> Result<Option<Issue>, ApiError> {
        match self
            .client
            .get_route("issue", &format!("issues/{}", encode(key)), &[])
            .await
        {
            Ok(answer) => Ok(Some(self.client.decode("issue", &answer)?)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every comment of an issue, oldest first, paged by id.
    pub async fn comments(&self, issue_key: &str) -> Result<Vec<Comment>, ApiError> {
        let path = format!("issues/{}/comments", encode(issue_key));
        self.id_pages("issue_comments", &path, &[], None, |c: &Comment| c.id)
            .await
    }

    /// The project's activities of `types` after activity `after`, oldest first.
    pub async fn activities(
        &self,
        project: &str,
        types: &[u32],
        after: u64,
    ) -> Result<Vec<Activity>, ApiError> {
        let path = format!("projects/{}/activities", encode(project));
        let types: Vec<String> = types.iter().map(u32::to_string).collect();
        let query: Vec<(&str, &str)> = types
            .iter()
            .map(|t| ("activityTypeId[]", t.as_str()))
            .collect();
        self.id_pages("activities", &path, &query, Some(after), |a: &Activity| {
            a.id
        })
        .await
    }

    /// The id of the project's latest activity (0: none yet): where a first run's feed starts.
    pub async fn latest_activity(&self, project: &str) -> Result<u64, ApiError> {
        let path = format!("projects/{}/activities", encode(project));
        let answer = self
            .client
            .get_route("activities", &path, &[("count", "1"), ("order", "desc")])
            .await?;
        let latest: Vec<Activity> = self.client.decode("activities", &answer)?;
        Ok(latest.first().map_or(0, |a| a.id))
    }

    /// Every wiki page of the project, without content.
    pub async fn wikis(&self, project: &str) -> Result<Vec<WikiPage>, ApiError> {
        let answer = self
            .client
            .get_route("wikis", "wikis", &[("projectIdOrKey", project)])
            .await?;
        self.client.decode("wikis", &answer)
    }

    /// One wiki page with its content.
    pub async fn wiki(&self, id: u64) -> Result<WikiPage, ApiError> {
        let answer = self
            .client
            .get_route("wiki", &format!("wikis/{id}"), &[])
            .await?;
        self.client.decode("wiki", &answer)
    }

    /// Every document of the project.
    pub async fn documents(&self, project: u64) -> Result<Vec<DocumentPage>, ApiError> {
        let project = project.to_string();
        self.offset_pages(
            "documents",
            "documents",
            &[("projectId[]", project.as_str())],
        )
        .await
    }

    /// One document with its text.
    pub async fn document(&self, id: &str) -> Result<DocumentPage, ApiError> {
        let answer = self
            .client
            .get_route("document", &format!("documents/{}", encode(id)), &[])
            .await?;
        self.client.decode("document", &answer)
    }

    /// Every page of an offset-paged listing: a page as long as `count` may have a next one.
    async fn offset_pages<T: DeserializeOwned>(
        &self,
        route: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ApiError> {
        let pages = numbered_pages(0, self.max_pages, |offset: u32| async move {
            let offset_text = offset.to_string();
            let count = COUNT.to_string();
            let mut query = query.to_vec();
            query.extend([("offset", offset_text.as_str()), ("count", count.as_str())]);
            let answer = self.client.get_route(route, path, &query).await?;
            let items: Vec<T> = self.client.decode(route, &answer)?;
            let next = (items.len() as u32 >= COUNT).then_some(offset + COUNT);
            Ok::<_, ApiError>(Page { items, next })
        });
        self.collect(route, pages).await
    }

    /// Every page of an id-paged listing (ascending, `minId` after the last id read).
    async fn id_pages<T: DeserializeOwned>(
        &self,
        route: &str,
        path: &str,
        query: &[(&str, &str)],
        after: Option<u64>,
        id: impl Fn(&T) -> u64 + Copy,
    ) -> Result<Vec<T>, ApiError> {
        let pages = cursor_pages(
            after.map(|a| a.to_string()),
            self.max_pages,
            |min_id: Option<String>| async move {
                let count = COUNT.to_string();
                let mut query = query.to_vec();
                query.extend([("count", count.as_str()), ("order", "asc")]);
                if let Some(min_id) = &min_id {
                    query.push(("minId", min_id.as_str()));
                }
                let answer = self.client.get_route(route, path, &query).await?;
                let mut items: Vec<T> = self.client.decode(route, &answer)?;
                let next = (items.len() as u32 >= COUNT)
                    .then(|| items.last().map(|last| id(last).to_string()))
                    .flatten();
                // Whether `minId` itself is included is not documented: the record already
                // read is dropped either way, and none is skipped.
                let floor: Option<u64> = min_id.as_deref().and_then(|m| m.parse().ok());
                items.retain(|item| floor.is_none_or(|floor| id(item) > floor));
                Ok::<_, ApiError>(Page { items, next })
            },
        );
        self.collect(route, pages).await
    }

    async fn collect<T, K>(
        &self,
        route: &str,
        pages: impl futures::Stream<Item = Result<Page<T, K>, PageError<ApiError>>>,
    ) -> Result<Vec<T>, ApiError> {
        let pages: Vec<Page<T, K>> = pages
            .try_collect()
            .await
            .map_err(|e| e.into_error(|reason| self.client.incomplete(route, reason)))?;
        Ok(pages.into_iter().flat_map(|p| p.items).collect())
    }
}

/// A key or id as one path segment.
fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
