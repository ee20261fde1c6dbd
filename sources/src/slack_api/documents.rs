//! Messages gathered into the documents the Slack sources share (see `crate::slack`): which
//! day or thread a message of history belongs to, and which document an id in the state names.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::state::{next_day, ts_micros};
use crate::slack::message::{ts_date, Home, SlackMessage};

/// Top-level messages of history, sorted into their documents.
#[derive(Default)]
pub(super) struct Gathered {
    /// A channel's day: its messages outside threads.
    pub days: BTreeMap<NaiveDate, Vec<SlackMessage>>,
    /// Parents of threads with replies, by `ts`: each becomes a thread document once its
    /// replies are read.
    pub parents: BTreeMap<String, SlackMessage>,
    /// Threads (by parent `ts`) that replies also sent to the channel show active.
    pub broadcast_threads: std::collections::BTreeSet<String>,
}

impl Gathered {
    /// Sorts one message of history. Replies also sent to the channel (`thread_broadcast`)
    /// come again with their thread's replies, where they belong, so they are left out here.
    pub fn add(&mut self, message: SlackMessage) {
        match message.home(|_| false) {
            Home::Day => self.add_to_day(message),
            Home::Thread(_) if message.is_thread_parent() => {
                self.parents.insert(message.ts.clone(), message);
            }
            Home::Thread(thread_ts) => {
                self.broadcast_threads.insert(thread_ts);
            }
        }
    }

    /// Adds a message to its day, whatever its threading (a parent whose replies are gone).
    pub fn add_to_day(&mut self, message: SlackMessage) {
        if let Some(day) = ts_date(&message.ts) {
            self.days.entry(day).or_default().push(message);
        }
    }

    /// Takes out the days after `day` (complete once history has reached `day`), oldest
    /// first, each day's messages in time order.
    pub fn take_days_after(
        &mut self,
        day: Option<NaiveDate>,
    ) -> Vec<(NaiveDate, Vec<SlackMessage>)> {
        let complete = match day {
            Some(day) => self.days.split_off(&next_day(day)),
            None => std::mem::take(&mut self.days),
        };
        complete
            .into_iter()
            .map(|(day, mut messages)| {
                sort_by_time(&mut messages);
                (day, messages)
            })
            .collect()
    }

    /// Takes out the parents on days after `day` (all of them with `None`).
    pub fn take_parents_after(&mut self, day: Option<NaiveDate>) -> Vec<SlackMessage> {
        let (complete, partial): (BTreeMap<_, _>, BTreeMap<_, _>) =
            std::mem::take(&mut self.parents)
                .into_iter()
                .partition(|(ts, _)| match (day, ts_date(ts)) {
                    (Some(day), Some(d)) => d > day,
                    _ => true,
                });
        self.parents = partial;
        complete.into_values().collect()
    }
}

/// Messages in the order they were posted.
pub(super) fn sort_by_time(messages: &mut [SlackMessage]) {
    messages.sort_by_key(|m| ts_micros(&m.ts).unwrap_or(i64::MAX));
}

/// What a document id of this channel names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DocumentRef {
    Day(NaiveDate),
    Thread(String),
    /// Not one this source makes (an export's continuation of a split thread).
    Other,
}

impl DocumentRef {
    pub fn parse(channel_id: &str, document_id: &str) -> Self {
        let Some(rest) = document_id
            .strip_prefix(channel_id)
            .and_then(|r| r.strip_prefix('/'))
        else {
            return Self::Other;
        };
        if let Some(ts) = rest.strip_prefix("thread/") {
            return if ts.contains('/') {
                Self::Other
            } else {
                Self::Thread(ts.to_string())
            };
        }
        rest.parse().map_or(Self::Other, Self::Day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: &str) -> SlackMessage {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn history_sorts_into_days_and_thread_parents_and_leaves_broadcasts_to_threads() {
        let mut gathered = Gathered::default();
        // 2021-10-27 and 2021-10-28, newest first as history answers.
        gathered.add(message(r#"{"ts": "1635440000.000200", "text": "b"}"#));
        gathered.add(message(
            r#"{"ts": "1635430000.000100", "thread_ts": "1635356172.000100", "subtype": "thread_broadcast"}"#,
        ));
        gathered.add(message(r#"{"ts": "1635356172.000300", "text": "a2"}"#));
        gathered.add(message(
            r#"{"ts": "1635356172.000100", "thread_ts": "1635356172.000100", "reply_count": 2}"#,
        ));
        gathered.add(message(r#"{"ts": "1635356100.000000", "text": "a1"}"#));
        assert_eq!(gathered.parents.len(), 1);
        assert!(
            gathered.broadcast_threads.contains("1635356172.000100"),
            "a broadcast names its thread as active"
        );
        let day_27 = NaiveDate::from_ymd_opt(2021, 10, 27).unwrap();
        // History has reached the 27th: only the 28th is complete.
        let complete = gathered.take_days_after(Some(day_27));
        assert_eq!(complete.len(), 1);
        assert_eq!(
            complete[0].0,
            NaiveDate::from_ymd_opt(2021, 10, 28).unwrap()
        );
        assert!(gathered.take_parents_after(Some(day_27)).is_empty());
        let rest = gathered.take_days_after(None);
        assert_eq!(rest[0].0, day_27);
        let texts: Vec<&str> = rest[0].1.iter().map(|m| m.ts.as_str()).collect();
        assert_eq!(
            texts,
            ["1635356100.000000", "1635356172.000300"],
            "time order"
        );
        assert_eq!(gathered.take_parents_after(None).len(), 1);
    }

    #[test]
    fn document_ids_parse_back() {
        let day = NaiveDate::from_ymd_opt(2021, 10, 27).unwrap();
        assert_eq!(
            DocumentRef::parse("C1", "C1/2021-10-27"),
            DocumentRef::Day(day)
        );
        assert_eq!(
            DocumentRef::parse("C1", "C1/thread/1.5"),
            DocumentRef::Thread("1.5".into())
        );
        assert_eq!(
            DocumentRef::parse("C1", "C1/thread/1.5/2.0"),
            DocumentRef::Other
        );
        assert_eq!(
            DocumentRef::parse("C1", "C2/2021-10-27"),
            DocumentRef::Other
        );
        assert_eq!(
            DocumentRef::parse("C1", "C10/2021-10-27"),
            DocumentRef::Other
        );
    }
}
