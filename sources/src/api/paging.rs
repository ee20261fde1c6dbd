//! Pagination, once for every API source: a stream of pages that asks for the next page only
//! when the previous one named it, and ends exactly when the API says so.
//!
//! Three ways APIs say "there is more", each a reader of one answer plus a stream:
//!
//! - a cursor in the body ([`next_cursor`], [`cursor_pages`]): Slack's
//!   `response_metadata.next_cursor`, the end being an empty or missing cursor. Never the
//!   length of a page: Slack documents pages holding fewer items than `limit` while more remain.
//! - a page number ([`next_page`], [`numbered_pages`]): Backlog and GitLab `page`/`per_page`,
//!   GitLab naming the next page in `X-Next-Page` (empty on the last page).
//! - a link ([`next_link`], [`linked_pages`]): the RFC 8288 (formerly 5988) `Link` header's
//!   `rel="next"` (GitLab, GitHub); the only form that also works where GitLab leaves out
//!   `X-Next-Page` (keyset pagination, very large listings).
//!
//! Each stream takes a closure fetching one page and yields every page, the first error ending
//! it. A page carries where the next one starts, so a source can record it once the page's
//! items are written and resume there (`cursor_pages(Some(saved), ..)`).
//!
//! ```
//! # async fn demo() -> Result<(), String> {
//! use futures::TryStreamExt;
//! use kass_sources::api::paging::{cursor_pages, Page};
//!
//! let pages = cursor_pages(None, |cursor: Option<String>| async move {
//!     Ok::<_, String>(match cursor.as_deref() {
//!         None => Page { items: vec![1, 2], next: Some("c2".to_string()) },
//!         _ => Page { items: vec![3], next: None },
//!     })
//! });
//! let items: Vec<Vec<i32>> = pages.map_ok(|page| page.items).try_collect().await?;
//! assert_eq!(items, vec![vec![1, 2], vec![3]]);
//! # Ok(()) }
//! ```

use std::future::Future;

use futures::stream::{self, Stream};
use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;

/// One page of a listing, and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

/// Pages of a cursor-paged listing. `fetch` gets `None` for the first page (or `resume`, a
/// cursor saved by an earlier run), then each page's `next`; the stream ends after a page whose
/// `next` is `None`. Read `next` with [`next_cursor`].
pub fn cursor_pages<T, E, F, Fut>(
    resume: Option<String>,
    fetch: F,
) -> impl Stream<Item = Result<Page<T, String>, E>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T, String>, E>>,
{
    pages(resume, fetch, |page| page.next.clone().map(Some))
}

/// Pages of a page-numbered listing, from page `first` (1, or a page saved by an earlier run)
/// to the page whose `next` is `None`. Read `next` with [`next_page`].
pub fn numbered_pages<T, E, F, Fut>(
    first: u32,
    fetch: F,
) -> impl Stream<Item = Result<Page<T, u32>, E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Page<T, u32>, E>>,
{
    pages(first, fetch, |page| page.next)
}

/// Pages of a listing linked by `Link: <url>; rel="next"`. `fetch` gets `None` for the first
/// request (the method and its query), then the URL each page links to next. Read `next` with
/// [`next_link`]; follow it with [`super::ApiClient::get_link`], which refuses a link that
/// leaves the API (it would carry the token elsewhere).
pub fn linked_pages<T, E, F, Fut>(fetch: F) -> impl Stream<Item = Result<Page<T, String>, E>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T, String>, E>>,
{
    pages(None, fetch, |page| page.next.clone().map(Some))
}

/// The one paging loop: fetch the page at `key`, yield it, go on while `next` names another.
fn pages<K, P, E, F, Fut>(
    first: K,
    fetch: F,
    next: fn(&P) -> Option<K>,
) -> impl Stream<Item = Result<P, E>>
where
    F: FnMut(K) -> Fut,
    Fut: Future<Output = Result<P, E>>,
{
    stream::unfold(Some((first, fetch)), move |state| async move {
        let (key, mut fetch) = state?;
        match fetch(key).await {
            Ok(page) => {
                let state = next(&page).map(|key| (key, fetch));
                Some((Ok(page), state))
            }
            Err(error) => Some((Err(error), None)),
        }
    })
}

/// The cursor of the next page in a Slack-style body, `response_metadata.next_cursor`; `None`
/// when it is empty or missing, which is how the last page says it is the last.
pub fn next_cursor(body: &Value) -> Option<String> {
    body.get("response_metadata")?
        .get("next_cursor")?
        .as_str()
        .filter(|cursor| !cursor.trim().is_empty())
        .map(str::to_string)
}

/// The next page number in `X-Next-Page` (GitLab); `None` when absent or empty (the last page).
pub fn next_page(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("x-next-page")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The target of the `Link` header's `rel="next"` (RFC 8288): `<url>; rel="next"` among
/// other links and parameters, the relation quoted or not and possibly one of several
/// (`rel="next last"`), over one header line or several.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(links)
        .find(|(_, rels)| rels.iter().any(|rel| rel.eq_ignore_ascii_case("next")))
        .map(|(target, _)| target)
}

/// The links of one `Link` value: each target with its `rel` values.
fn links(value: &str) -> Vec<(String, Vec<String>)> {
    let mut links = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + close].trim().to_string();
        rest = &rest[open + close + 1..];
        // The parameters run to the next comma outside quotes.
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == ',' && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        let rels = rest[..end]
            .split(';')
            .filter_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("rel")
                    .then(|| value.trim().trim_matches('"').to_string())
            })
            .flat_map(|rels| {
                rels.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        links.push((target, rels));
        rest = &rest[end..];
    }
    links
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, TryStreamExt};
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn an_empty_or_missing_cursor_ends_the_listing() {
        let body = |v: Value| v;
        assert_eq!(
            next_cursor(&body(
                json!({"response_metadata": {"next_cursor": "dXNlcjpVMDYx"}})
            )),
            Some("dXNlcjpVMDYx".to_string())
        );
        assert_eq!(
            next_cursor(&body(json!({"response_metadata": {"next_cursor": ""}}))),
            None
        );
        assert_eq!(next_cursor(&body(json!({"response_metadata": {}}))), None);
        assert_eq!(next_cursor(&body(json!({"ok": true}))), None);
    }

    #[test]
    fn next_page_number_is_read_and_empty_means_last() {
        assert_eq!(next_page(&headers(&[("x-next-page", "3")])), Some(3));
        assert_eq!(next_page(&headers(&[("x-next-page", "")])), None);
        assert_eq!(next_page(&HeaderMap::new()), None);
    }

    #[test]
    fn next_link_among_other_links_and_parameters() {
        let gitlab = r#"<https://gitlab.example.com/api/v4/projects/8/issues?page=1&per_page=3>; rel="prev", <https://gitlab.example.com/api/v4/projects/8/issues?page=3&per_page=3>; rel="next", <https://gitlab.example.com/api/v4/projects/8/issues?page=1&per_page=3>; rel="first""#;
        assert_eq!(
            next_link(&headers(&[("link", gitlab)])).as_deref(),
            Some("https://gitlab.example.com/api/v4/projects/8/issues?page=3&per_page=3")
        );
        // Unquoted, several relations, a comma inside the URL and a quoted parameter.
        let odd =
            r#"<https://x/a?q=1,2>; title="a, b"; rel=last, <https://x/b?q=1,2>; rel="next last""#;
        assert_eq!(
            next_link(&headers(&[("link", odd)])).as_deref(),
            Some("https://x/b?q=1,2")
        );
        // Over two header lines.
        let two = headers(&[
            ("link", r#"<https://x/1>; rel="prev""#),
            ("link", r#"<https://x/3>; rel=next"#),
        ]);
        assert_eq!(next_link(&two).as_deref(), Some("https://x/3"));
        assert_eq!(
            next_link(&headers(&[("link", r#"<https://x/1>; rel="prev""#)])),
            None
        );
    }

    #[tokio::test]
    async fn a_stream_resumes_from_a_saved_cursor_and_stops_at_the_first_error() {
        let fetched = std::sync::Mutex::new(Vec::new());
        let pages = cursor_pages(Some("c2".to_string()), |cursor| {
            fetched.lock().unwrap().push(cursor.clone());
            async move {
                match cursor.as_deref() {
                    Some("c2") => Ok(Page {
                        items: vec![2],
                        next: Some("c3".to_string()),
                    }),
                    _ => Err("boom"),
                }
            }
        });
        let all: Vec<_> = pages.collect::<Vec<_>>().await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], Err("boom"));
        assert_eq!(
            *fetched.lock().unwrap(),
            vec![Some("c2".to_string()), Some("c3".to_string())]
        );
        let numbered: Vec<u32> = numbered_pages(1, |n| async move {
            Ok::<_, ()>(Page {
                items: vec![n],
                next: (n < 3).then_some(n + 1),
            })
        })
        .map_ok(|page| page.items[0])
        .try_collect()
        .await
        .unwrap();
        assert_eq!(numbered, vec![1, 2, 3]);
    }
}
