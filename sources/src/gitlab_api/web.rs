//! The GitLab REST v4 calls the source makes, on the shared API client: each under a route
//! label (`project`, `issues`, `issue_notes`, `wikis`, `tree`, `blob`, ...), so the ids in a path never become a metric
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

/// A project as `GET /projects/:id` (and a group's project listing) answers it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Project {
    pub id: u64,
    pub path_with_namespace: String,
    #[serde(default)]
    pub web_url: String,
    /// `None` for a project with an empty repository.
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// A wiki page as `GET /projects/:id/wikis?with_content=1` lists it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct WikiPage {
    pub slug: String,
    #[serde(default)]
    pub title: String,
    /// `markdown`, `rdoc`, `asciidoc` or `org`.
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub content: String,
}

/// A commit as `GET /projects/:id/repository/commits/:ref` answers it.
#[derive(Debug, Clone, Deserialize)]
struct Commit {
    id: String,
}

/// An entry of `GET /projects/:id/repository/tree`: a file (`blob`), a directory (`tree`)
/// or a submodule (`commit`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct TreeEntry {
    /// The object id: for a blob, what changes exactly when its content does.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    /// Git's file mode: `100644`, `100755`, `120000` (a symbolic link).
    #[serde(default)]
    pub mode: String,
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

    /// Every project of a group, those of its subgroups and archived ones included, but not
    /// those only shared with it (`with_shared=false`); ordered by id, so a project created
    /// while the listing pages does not move the others.
    pub async fn group_projects(&self, group: &str) -> Result<Vec<Project>, ApiError> {
        let encoded: String = form_urlencoded::byte_serialize(group.as_bytes()).collect();
        let query = [
            ("include_subgroups", "true"),
            ("with_shared", "false"),
            ("order_by", "id"),
            ("sort", "asc"),
            ("simple", "true"),
            ("per_page", PER_PAGE),
        ];
        let path = format!("groups/{encoded}/projects");
        self.all("group_projects", &path, &query).await
    }

    /// Every page of a project's wiki with its content, in one listing; a project whose wiki
    /// is disabled (GitLab answers 403 or 404) has none.
    pub async fn wiki(&self, project: u64) -> Result<Vec<WikiPage>, ApiError> {
        let path = format!("projects/{project}/wikis");
        match self.all("wikis", &path, &[("with_content", "1")]).await {
            Err(e) if matches!(e.status(), Some(403 | 404)) => Ok(Vec::new()),
            other => other,
        }
    }

    /// The commit a branch, tag or commit id names; `None` when GitLab answers 404 (no such
    /// ref in this project).
    pub async fn commit(&self, project: u64, git_ref: &str) -> Result<Option<String>, ApiError> {
        let encoded: String = form_urlencoded::byte_serialize(git_ref.as_bytes()).collect();
        let path = format!("projects/{project}/repository/commits/{encoded}");
        match self.client.get_route("commit", &path, &[]).await {
            Ok(answer) => Ok(Some(self.client.decode::<Commit>("commit", &answer)?.id)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every entry of the repository's tree at `commit`, recursively, keyset-paged (the
    /// pagination GitLab recommends for trees: offset pages of a large tree get slow and
    /// stop at a maximum offset). Read at a commit id, not a branch name, so a push while the
    /// listing pages does not mix two trees.
    pub async fn tree(&self, project: u64, commit: &str) -> Result<Vec<TreeEntry>, ApiError> {
        let path = format!("projects/{project}/repository/tree");
        let query = [
            ("ref", commit),
            ("recursive", "true"),
            ("pagination", "keyset"),
            ("per_page", PER_PAGE),
        ];
        self.all("tree", &path, &query).await
    }

    /// A blob's raw bytes.
    pub async fn blob(&self, project: u64, sha: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!("projects/{project}/repository/blobs/{sha}/raw");
        Ok(self.client.get_route("blob", &path, &[]).await?.body)
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
        if kind == Kind::Issues {
            // Keyset pages (GitLab 18.3 and later for project issues) stay cheap deep into a
            // big project, where offsets grow slow; an instance without it for this request
            // answers 405 (or ignores the parameter and pages by offset, which `Link` follows
            // alike).
            let mut keyset = query.clone();
            keyset.push(("pagination", "keyset"));
            match self.all(kind.path(), &path, &keyset).await {
                Err(e) if e.status() == Some(405) => {}
                read => return read,
            }
        }
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
