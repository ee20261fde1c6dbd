//! Pagination, once for every API source: a stream of pages that asks for the next page only
//! when the previous one named it, ends exactly when the API says so, and tells a complete
//! read from one that stopped short.
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
//! A read is complete only when its last page says it is the last. It is [`Incomplete`], and
//! ends with that error, when a page says there is more but names no next page (Slack's
//! `has_more: true` with an empty `next_cursor`), when a page names a next page this read
//! already asked for (a server handing out the same cursor forever), or when the read reaches
//! its page cap. A source concludes nothing from what an incomplete read did not find: no
//! deletion comes of it. [`PageTrail`] holds these checks for loops that page by hand.
//!
//! ```
//! # async fn demo() -> Result<(), kass_sources::api::paging::PageError<String>> {
//! use futures::TryStreamExt;
//! use kass_sources::api::paging::{cursor_pages, Page};
//!
//! let pages = cursor_pages(None, 100, |cursor: Option<String>| async move {
//!     Ok::<_, String>(match cursor.as_deref() {
//!         None => Page { items: vec![1, 2], next: Some("c2".to_string()) },
//!         _ => Page { items: vec![3], next: None },
//!     })
//! });
//! let items: Vec<Vec<i32>> = pages.map_ok(|page| page.items).try_collect().await?;
//! assert_eq!(items, vec![vec![1, 2], vec![3]]);
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;

use futures::stream::{self, Stream};
use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;

/// One page of a listing, and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

/// Why a paged read is not complete. Its `code` is the reason a source counts the scope it
/// skipped under (`kass_source_scopes_skipped_total{reason}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incomplete {
    /// A page said there is more (`has_more: true`) but named no next page.
    #[error("a page says there is more but names no next page")]
    NoNext,
    /// A page named a next page this read had already asked for: following it would loop.
    #[error("page {page} names a next page this read already asked for")]
    Repeated { page: usize },
    /// The read took as many pages as one read may.
    #[error("{pages} pages read, the most one read may take")]
    PageCap { pages: usize },
}

impl Incomplete {
    /// `incomplete_listing`, `repeated_cursor` or `page_cap`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoNext => "incomplete_listing",
            Self::Repeated { .. } => "repeated_cursor",
            Self::PageCap { .. } => "page_cap",
        }
    }
}

/// What a paged stream ends with when it does not end complete: the fetch's own error, or
/// the read being [`Incomplete`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PageError<E> {
    #[error("{0}")]
    Fetch(E),
    #[error("{0}")]
    Incomplete(Incomplete),
}

impl<E> PageError<E> {
    /// One error type for the caller: the fetch's, with `incomplete` making one of a
    /// stopped read (naming what the fetch's errors name: the source, the method).
    pub fn into_error(self, incomplete: impl FnOnce(Incomplete) -> E) -> E {
        match self {
            Self::Fetch(error) => error,
            Self::Incomplete(reason) => incomplete(reason),
        }
    }
}

/// The pages one read has followed, to tell it when to stop short: a next page already asked
/// for, or the page cap reached. The streams below keep one; a loop paging by hand (reading
/// each page before it asks for the next) keeps its own:
///
/// ```
/// use kass_sources::api::paging::{Incomplete, PageTrail};
///
/// let mut trail = PageTrail::new(None::<&String>, 10);
/// assert_eq!(trail.follow(Some("c2".to_string())), Ok(Some("c2".to_string())));
/// assert_eq!(trail.follow(Some("c2".to_string())), Err(Incomplete::Repeated { page: 2 }));
/// ```
#[derive(Debug, Clone)]
pub struct PageTrail<K> {
    seen: HashSet<K>,
    pages: usize,
    max_pages: usize,
}

impl<K: Eq + Hash + Clone> PageTrail<K> {
    /// A read starting at `first` (`None`: the listing's first page, which has no key) that
    /// may take at most `max_pages` pages (at least 1).
    pub fn new(first: Option<&K>, max_pages: usize) -> Self {
        Self {
            seen: first.into_iter().cloned().collect(),
            pages: 0,
            max_pages: max_pages.max(1),
        }
    }

    /// A page was read and names `next` as the next (`None`: it was the last). Returns the
    /// key to ask for next, `Ok(None)` when the read is complete, or why it must stop.
    pub fn follow(&mut self, next: Option<K>) -> Result<Option<K>, Incomplete> {
        self.pages += 1;
        let Some(next) = next else {
            return Ok(None);
        };
        if self.seen.contains(&next) {
            return Err(Incomplete::Repeated { page: self.pages });
        }
        if self.pages >= self.max_pages {
            return Err(Incomplete::PageCap { pages: self.pages });
        }
        self.seen.insert(next.clone());
        Ok(Some(next))
    }
}

/// Pages of a cursor-paged listing. `fetch` gets `None` for the first page (or `resume`, a
/// cursor saved by an earlier run), then each page's `next`; the stream ends after a page whose
/// `next` is `None`, or with [`PageError::Incomplete`] (see [`PageTrail`]) after at most
/// `max_pages` pages. Read `next` with [`next_cursor`].
pub fn cursor_pages<T, E, F, Fut>(
    resume: Option<String>,
    max_pages: usize,
    fetch: F,
) -> impl Stream<Item = Result<Page<T, String>, PageError<E>>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T, String>, E>>,
{
    let trail = PageTrail::new(resume.as_ref(), max_pages);
    pages(resume, trail, fetch)
}

/// Pages of a page-numbered listing, from page `first` (1, or a page saved by an earlier run)
/// to the page whose `next` is `None`, at most `max_pages` of them. Read `next` with
/// [`next_page`].
pub fn numbered_pages<T, E, F, Fut>(
    first: u32,
    max_pages: usize,
    mut fetch: F,
) -> impl Stream<Item = Result<Page<T, u32>, PageError<E>>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Page<T, u32>, E>>,
{
    let trail = PageTrail::new(Some(&first), max_pages);
    pages(Some(first), trail, move |key: Option<u32>| {
        fetch(key.expect("a numbered listing always names its page"))
    })
}

/// Pages of a listing linked by `Link: <url>; rel="next"`. `fetch` gets `None` for the first
/// request (the method and its query), then the URL each page links to next, at most
/// `max_pages` pages. Read `next` with [`next_link`]; follow it with
/// [`super::ApiClient::get_link`], which refuses a link that leaves the API (it would carry
/// the token elsewhere).
pub fn linked_pages<T, E, F, Fut>(
    max_pages: usize,
    fetch: F,
) -> impl Stream<Item = Result<Page<T, String>, PageError<E>>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T, String>, E>>,
{
    pages(None, PageTrail::new(None, max_pages), fetch)
}

/// Where the one paging loop stands.
enum Paging<K, F> {
    /// Fetch the page at this key next.
    Fetch(Option<K>, PageTrail<K>, F),
    /// The last page read says the read stops short: yield why, then end.
    Stop(Incomplete),
}

/// The one paging loop: fetch the page at `key`, yield it, go on while `next` names another
/// that `trail` lets it follow; a read that stops short yields its pages, then why.
fn pages<K, T, E, F, Fut>(
    first: Option<K>,
    trail: PageTrail<K>,
    fetch: F,
) -> impl Stream<Item = Result<Page<T, K>, PageError<E>>>
where
    K: Eq + Hash + Clone,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<Page<T, K>, E>>,
{
    stream::unfold(
        Some(Paging::Fetch(first, trail, fetch)),
        |state| async move {
            match state? {
                Paging::Stop(reason) => Some((Err(PageError::Incomplete(reason)), None)),
                Paging::Fetch(key, mut trail, mut fetch) => match fetch(key).await {
                    Ok(page) => {
                        let state = match trail.follow(page.next.clone()) {
                            Ok(Some(next)) => Some(Paging::Fetch(Some(next), trail, fetch)),
                            Ok(None) => None,
                            Err(reason) => Some(Paging::Stop(reason)),
                        };
                        Some((Ok(page), state))
                    }
                    Err(error) => Some((Err(PageError::Fetch(error)), None)),
                },
            }
        },
    )
}

/// The cursor of the next page in a Slack-style body, `response_metadata.next_cursor`;
/// `Ok(None)` when it is empty or missing, which is how the last page says it is the last;
/// [`Incomplete::NoNext`] when the body still says `has_more: true` (a page that says there
/// is more but gives no way to it is not a last page).
pub fn next_cursor(body: &Value) -> Result<Option<String>, Incomplete> {
    let cursor = body
        .get("response_metadata")
        .and_then(|m| m.get("next_cursor"))
        .and_then(Value::as_str)
        .filter(|cursor| !cursor.trim().is_empty())
        .map(str::to_string);
    if cursor.is_none() && body.get("has_more").and_then(Value::as_bool) == Some(true) {
        return Err(Incomplete::NoNext);
    }
    Ok(cursor)
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
    fn an_empty_or_missing_cursor_ends_the_listing_unless_more_is_announced() {
        assert_eq!(
            next_cursor(&json!({"response_metadata": {"next_cursor": "dXNlcjpVMDYx"}})),
            Ok(Some("dXNlcjpVMDYx".to_string()))
        );
        assert_eq!(
            next_cursor(&json!({"response_metadata": {"next_cursor": ""}})),
            Ok(None)
        );
        assert_eq!(next_cursor(&json!({"response_metadata": {}})), Ok(None));
        assert_eq!(next_cursor(&json!({"ok": true})), Ok(None));
        assert_eq!(
            next_cursor(&json!({"has_more": false, "response_metadata": {"next_cursor": ""}})),
            Ok(None)
        );
        // More announced, no way to it: not a last page.
        assert_eq!(
            next_cursor(&json!({"has_more": true, "response_metadata": {"next_cursor": ""}})),
            Err(Incomplete::NoNext)
        );
        assert_eq!(
            next_cursor(&json!({"has_more": true})),
            Err(Incomplete::NoNext)
        );
        assert_eq!(Incomplete::NoNext.code(), "incomplete_listing");
    }

    #[test]
    fn a_trail_stops_at_a_repeated_key_and_at_its_page_cap() {
        let mut trail = PageTrail::new(None, 3);
        assert_eq!(trail.follow(Some("a")), Ok(Some("a")));
        assert_eq!(trail.follow(Some("b")), Ok(Some("b")));
        assert_eq!(
            trail.follow(Some("c")),
            Err(Incomplete::PageCap { pages: 3 })
        );
        let mut trail = PageTrail::new(None, 100);
        assert_eq!(trail.follow(Some("a")), Ok(Some("a")));
        assert_eq!(trail.follow(Some("b")), Ok(Some("b")));
        // Back to a page already read: a loop, whether the same cursor or an older one.
        assert_eq!(
            trail.follow(Some("a")),
            Err(Incomplete::Repeated { page: 3 })
        );
        assert_eq!(Incomplete::Repeated { page: 3 }.code(), "repeated_cursor");
        // A resumed read counts the cursor it resumed at as asked for.
        let mut trail = PageTrail::new(Some(&"r"), 100);
        assert_eq!(
            trail.follow(Some("r")),
            Err(Incomplete::Repeated { page: 1 })
        );
        let mut trail = PageTrail::new(None, 1);
        assert_eq!(
            trail.follow(None::<&str>),
            Ok(None),
            "a last page is never capped"
        );
    }

    #[tokio::test]
    async fn a_stream_handing_out_the_same_cursor_forever_ends_incomplete() {
        let fetched = std::sync::Mutex::new(0);
        let pages = cursor_pages(None, 1_000, |cursor: Option<String>| {
            *fetched.lock().unwrap() += 1;
            async move {
                Ok::<_, ()>(Page {
                    items: vec![cursor.is_some()],
                    next: Some("same".to_string()),
                })
            }
        });
        let all: Vec<_> = pages.collect::<Vec<_>>().await;
        assert_eq!(
            all,
            vec![
                Ok(Page {
                    items: vec![false],
                    next: Some("same".to_string())
                }),
                Ok(Page {
                    items: vec![true],
                    next: Some("same".to_string())
                }),
                Err(PageError::Incomplete(Incomplete::Repeated { page: 2 })),
            ]
        );
        assert_eq!(
            *fetched.lock().unwrap(),
            2,
            "no request after the loop shows"
        );
        let capped: Vec<_> = numbered_pages(1, 2, |n| async move {
            Ok::<_, ()>(Page {
                items: vec![n],
                next: Some(n + 1),
            })
        })
        .collect()
        .await;
        assert_eq!(capped.len(), 3);
        assert_eq!(
            capped[2],
            Err(PageError::Incomplete(Incomplete::PageCap { pages: 2 }))
        );
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
        let pages = cursor_pages(Some("c2".to_string()), 100, |cursor| {
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
        assert_eq!(all[1], Err(PageError::Fetch("boom")));
        assert_eq!(
            *fetched.lock().unwrap(),
            vec![Some("c2".to_string()), Some("c3".to_string())]
        );
        let numbered: Vec<u32> = numbered_pages(1, 100, |n| async move {
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
