//! The GitLab REST v4 calls the source makes, on the shared API client: each under a route
//! label (`project`, `issues`, `issue_notes`, ...), so the ids in a path never become a metric
//! label or a rate-limiter key; pages followed by the `Link: rel="next"` header (what GitLab
//! sends for offset and keyset pagination alike), never by `x-total` or `x-total-pages`, which
//! GitLab leaves out above 10,000 records.

use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::api::paging::{linked_pages, next_link, Page, PageError};
use crate::api::{ApiClient, ApiError};
use crate::gitlab::model::{Issue, Kind, Note};

/// Records per page: GitLab's maximum.
const PER_PAGE: &str = "100";

/// A project as `GET /projects/:id` answers it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Project {
    pub id: u64,
    pub path_with_namespace: String,
}

#[derive(Debug, Clone)]
pub(super) struct GitlabWeb {
    pub client: ApiClient,
    pub max_pages: usize,
}

impl GitlabWeb {
    /// A project by its path (`group/app`) or id; `None` when GitLab answers 404.
    pub async fn project(&self, path: &str) -> Result<Option<Project>, ApiError> {
        let encoded: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
        match self
            .client
            .get_route("project", &format!("projects/{encoded}"), &[])
            .await
        {
            Ok(answer) => Ok(Some(self.client.decode("project", &answer)?)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every issue (or merge request) of a project, oldest created first: an issue edited
    /// while the listing runs does not move (as it would ordered by `updated_at`).
    pub async fn listing(
        &self,
        project: u64,
        kind: Kind,
        updated_after: Option<&str>,
    ) -> Result<Vec<Issue>, ApiError> {
        let mut query = vec![
            ("order_by", "created_at"),
            ("sort", "asc"),
            ("per_page", PER_PAGE),
            ("scope", "all"),
        ];
        if let Some(after) = updated_after {
            query.push(("updated_after", after));
        }
        let path = format!("projects/{project}/{}", kind.path());
        self.all(kind.path(), &path, &query).await
    }

    /// One issue or merge request; `None` when GitLab answers 404 (deleted).
    pub async fn one(&self, project: u64, kind: Kind, iid: u64) -> Result<Option<Issue>, ApiError> {
        let path = format!("projects/{project}/{}/{iid}", kind.path());
        match self.client.get_route(kind.one_route(), &path, &[]).await {
            Ok(answer) => Ok(Some(self.client.decode(kind.one_route(), &answer)?)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every note of an issue or merge request, oldest first.
    pub async fn notes(&self, project: u64, kind: Kind, iid: u64) -> Result<Vec<Note>, ApiError> {
        let path = format!("projects/{project}/{}/{iid}/notes", kind.path());
        let query = [
            ("order_by", "created_at"),
            ("sort", "asc"),
            ("per_page", PER_PAGE),
        ];
        self.all(kind.notes_route(), &path, &query).await
    }

    /// Every page of a listing, following `Link: rel="next"`; a read that stops short is an
    /// [`ApiError::Incomplete`].
    async fn all<T: DeserializeOwned>(
        &self,
        route: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ApiError> {
        let pages = linked_pages(self.max_pages, |link: Option<String>| async move {
            let answer = match &link {
                None => self.client.get_route(route, path, query).await?,
                Some(link) => self.client.get_link(route, link).await?,
            };
            let items: Vec<T> = self.client.decode(route, &answer)?;
            Ok::<_, ApiError>(Page {
                items,
                next: next_link(&answer.headers),
            })
        });
        let pages: Vec<Page<T, String>> = pages.try_collect().await.map_err(|e| match e {
            PageError::Fetch(e) => e,
            PageError::Incomplete(reason) => self.client.incomplete(route, reason),
        })?;
        Ok(pages.into_iter().flat_map(|p| p.items).collect())
    }
}
