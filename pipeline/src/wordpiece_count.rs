//! Counting BERT WordPiece tokens without running the whole tokenizer, for the words where that
//! is exact: pure printable ASCII. Everything else goes to the real tokenizer, one word at a
//! time.
//!
//! Why: chunking counts the tokens of every unit of text it sees, and the `tokenizers` crate
//! builds a full encoding for each count (normalised string with alignments, offsets, ids,
//! type ids, masks); on chat text that was nearly all of the fetch half's time. Counting only
//! needs the greedy longest-match over the vocabulary.
//!
//! Why it is exact: BERT's pre-tokenizer splits on whitespace, and its normaliser works one
//! character at a time, so a text's count is the sum of its whitespace-separated words' counts.
//! For a word of printable ASCII the normaliser only lowercases, the pre-tokenizer cuts out each
//! ASCII punctuation mark as a token of its own, and WordPiece does the rest. A word holding
//! anything else (accents, CJK, emoji, control characters, Unicode spaces) or the start of an
//! added token such as `[CLS]` is counted by the tokenizer itself. `tests` compare both on
//! generated and real text.

use std::collections::HashSet;

use serde_json::Value;

/// The vocabulary lookups of one WordPiece model.
pub(crate) struct WordPieceCount {
    /// Entries that may start a word.
    starts: HashSet<Box<str>>,
    /// Entries that continue a word, without their `##` prefix.
    continuations: HashSet<Box<str>>,
    /// Longest entry, in bytes: no match is longer.
    longest: usize,
    max_word_chars: usize,
    lowercase: bool,
    /// ASCII bytes that begin an added token: words holding one go to the tokenizer.
    added_token_start: [bool; 128],
}

impl WordPieceCount {
    /// The counter for a `tokenizer.json`, if it is a BERT WordPiece tokenizer (normaliser,
    /// pre-tokenizer and model as BERT's); `None` for any other, which is then counted by the
    /// tokenizer alone.
    pub(crate) fn from_tokenizer_json(json: &Value) -> Option<Self> {
        let normalizer = json.get("normalizer")?;
        let model = json.get("model")?;
        let is =
            |v: &Value, key: &str, want: &str| v.get(key).and_then(Value::as_str) == Some(want);
        if !is(normalizer, "type", "BertNormalizer")
            || normalizer.get("clean_text").and_then(Value::as_bool) != Some(true)
            || !is(json.get("pre_tokenizer")?, "type", "BertPreTokenizer")
            || !is(model, "type", "WordPiece")
        {
            return None;
        }
        let prefix = model.get("continuing_subword_prefix")?.as_str()?;
        let max_word_chars = model.get("max_input_chars_per_word")?.as_u64()? as usize;
        let lowercase = normalizer.get("lowercase").and_then(Value::as_bool)?;
        let mut starts = HashSet::new();
        let mut continuations = HashSet::new();
        let mut longest = 0;
        for entry in model.get("vocab")?.as_object()?.keys() {
            match entry.strip_prefix(prefix) {
                Some(rest) if !prefix.is_empty() => {
                    longest = longest.max(rest.len());
                    continuations.insert(rest.into());
                }
                _ => {
                    longest = longest.max(entry.len());
                    starts.insert(entry.as_str().into());
                }
            }
        }
        let mut added_token_start = [false; 128];
        for token in json.get("added_tokens")?.as_array()? {
            let first = token.get("content")?.as_str()?.bytes().next()?;
            if first < 128 {
                added_token_start[first as usize] = true;
            } else {
                return None;
            }
        }
        Some(Self {
            starts,
            continuations,
            longest,
            max_word_chars,
            lowercase,
            added_token_start,
        })
    }

    /// Tokens of `text` (no special tokens); `slow` counts a word this cannot.
    pub(crate) fn count(&self, text: &str, slow: impl Fn(&str) -> usize) -> usize {
        let mut total = 0;
        for word in text.split([' ', '\t', '\n', '\r']) {
            if word.is_empty() {
                continue;
            }
            let plain = word
                .bytes()
                .all(|b| b.is_ascii_graphic() && !self.added_token_start[b as usize]);
            if !plain {
                total += slow(word);
                continue;
            }
            let mut run = None;
            for (i, b) in word.bytes().enumerate() {
                if b.is_ascii_punctuation() {
                    if let Some(start) = run.take() {
                        total += self.pieces(&word.as_bytes()[start..i]);
                    }
                    // A punctuation mark is a word of its own: one token, known or [UNK].
                    total += 1;
                } else if run.is_none() {
                    run = Some(i);
                }
            }
            if let Some(start) = run {
                total += self.pieces(&word.as_bytes()[start..]);
            }
        }
        total
    }

    /// WordPiece's greedy longest match over one run of ASCII letters and digits; a run with
    /// no full match is one [UNK], as is a run longer than the model's word limit.
    fn pieces(&self, run: &[u8]) -> usize {
        if run.len() > self.max_word_chars {
            return 1;
        }
        let mut buffer = [0u8; 128];
        let mut long = Vec::new();
        let word: &mut [u8] = if run.len() <= buffer.len() {
            &mut buffer[..run.len()]
        } else {
            long.resize(run.len(), 0);
            &mut long
        };
        word.copy_from_slice(run);
        if self.lowercase {
            word.make_ascii_lowercase();
        }
        // ASCII letters and digits only: valid UTF-8, and every cut is a char boundary.
        let word = std::str::from_utf8(word).expect("ASCII");
        let mut start = 0;
        let mut count = 0;
        while start < word.len() {
            let vocabulary = if start == 0 {
                &self.starts
            } else {
                &self.continuations
            };
            let mut end = word.len().min(start + self.longest);
            while end > start && !vocabulary.contains(&word[start..end]) {
                end -= 1;
            }
            if end == start {
                return 1;
            }
            count += 1;
            start = end;
        }
        count
    }
}
