//! A project's activity feed (`GET /api/v2/projects/:key/activities`): what Backlog itself
//! says changed since the last run, read from the last activity id kept in the project's
//! state (`minId`). Backlog has what GitLab lacks, a change feed, so a deletion is known
//! without asking for every issue.
//!
//! Of the documented activity types the source reads:
//!
//! | type | what                       | what the source does                        |
//! |------|----------------------------|---------------------------------------------|
//! | 1, 2, 3 | issue created, updated, commented | the issue is read again (a comment edited or deleted may leave `updated` as it was) |
//! | 14   | issues updated at once     | each issue in `content.link` is read again  |
//! | 4    | issue deleted              | its document becomes a tombstone            |
//! | 5, 6 | wiki page created, updated | (the wiki listing is compared anyway)       |
//! | 7    | wiki page deleted          | its document becomes a tombstone            |
//!
//! A first run reads no history of the feed: it only notes the latest activity id, since
//! everything it holds it has just read.

use std::collections::BTreeSet;

use serde_json::Value;

use super::include::Include;
use super::web::{Activity, BacklogWeb};
use crate::api::ApiError;

const ISSUE_CREATED: u32 = 1;
const ISSUE_UPDATED: u32 = 2;
const ISSUE_COMMENTED: u32 = 3;
const ISSUE_DELETED: u32 = 4;
const WIKI_CREATED: u32 = 5;
const WIKI_UPDATED: u32 = 6;
const WIKI_DELETED: u32 = 7;
const ISSUES_UPDATED: u32 = 14;

/// What the feed said since the last run.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Feed {
    /// Issues (their number in the project, `keyId`) to read again whatever their
    /// `updated` says.
    pub touched: BTreeSet<u64>,
    /// Issues deleted (`keyId`).
    pub deleted_issues: BTreeSet<u64>,
    /// Wiki pages deleted (page id).
    pub deleted_wikis: BTreeSet<u64>,
    /// The last activity id read: where the next run starts.
    pub after: u64,
}

/// The project's feed after `after` (`None`: a first run, which only notes where it is).
pub(super) async fn read(
    web: &BacklogWeb,
    project: &str,
    include: Include,
    after: Option<u64>,
) -> Result<Feed, ApiError> {
    let Some(after) = after else {
        return Ok(Feed {
            after: web.latest_activity(project).await?,
            ..Feed::default()
        });
    };
    let mut types = Vec::new();
    if include.issues {
        types.extend([
            ISSUE_CREATED,
            ISSUE_UPDATED,
            ISSUE_COMMENTED,
            ISSUE_DELETED,
            ISSUES_UPDATED,
        ]);
    }
    if include.wikis {
        types.extend([WIKI_CREATED, WIKI_UPDATED, WIKI_DELETED]);
    }
    let activities = web.activities(project, &types, after).await?;
    Ok(of(&activities, after))
}

/// What `activities` (after activity `after`) say.
fn of(activities: &[Activity], after: u64) -> Feed {
    let mut feed = Feed {
        after,
        ..Feed::default()
    };
    for activity in activities {
        feed.after = feed.after.max(activity.id);
        let content = &activity.content;
        match activity.kind {
            ISSUE_CREATED | ISSUE_UPDATED | ISSUE_COMMENTED => {
                feed.touched.extend(key_id(content));
            }
            ISSUES_UPDATED => {
                let links = content.get("link").and_then(Value::as_array);
                feed.touched
                    .extend(links.into_iter().flatten().filter_map(key_id));
            }
            ISSUE_DELETED => feed.deleted_issues.extend(key_id(content)),
            WIKI_DELETED => feed
                .deleted_wikis
                .extend(content.get("id").and_then(Value::as_u64)),
            _ => {}
        }
    }
    // An issue deleted is not read again, though it was touched before.
    feed.touched.retain(|n| !feed.deleted_issues.contains(n));
    feed
}

fn key_id(content: &Value) -> Option<u64> {
    content.get("key_id").and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn activity(id: u64, kind: u32, content: Value) -> Activity {
        serde_json::from_value(json!({"id": id, "type": kind, "content": content})).unwrap()
    }

    #[test]
    fn deletions_and_touched_issues_come_out_of_the_feed() {
        let feed = of(
            &[
                activity(11, 3, json!({"id": 100, "key_id": 1, "comment": {"id": 5}})),
                activity(
                    12,
                    14,
                    json!({"link": [{"id": 101, "key_id": 2}, {"id": 102, "key_id": 3}]}),
                ),
                activity(13, 4, json!({"id": 102, "key_id": 3})),
                activity(14, 7, json!({"id": 40, "name": "Home"})),
            ],
            10,
        );
        assert_eq!(feed.touched, BTreeSet::from([1, 2]));
        assert_eq!(feed.deleted_issues, BTreeSet::from([3]));
        assert_eq!(feed.deleted_wikis, BTreeSet::from([40]));
        assert_eq!(feed.after, 14);
        assert_eq!(of(&[], 10).after, 10);
    }
}
