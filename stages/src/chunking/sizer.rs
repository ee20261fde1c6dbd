use kass_pipeline::tokenizer::TokenCounter;
use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};

/// Token counting against one budget: the tokens a chunk may hold besides the model's special
/// tokens.
///
/// With the BERT WordPiece tokenizer, the tokens of texts joined by whitespace are the sum of
/// each text's tokens, so strategies count every unit (line, paragraph, message) once and add.
/// [`super::finish`] checks every chunk with one full count in case a tokenizer disagrees.
pub(crate) struct Sizer<'a> {
    counter: &'a TokenCounter,
    budget: usize,
}

impl<'a> Sizer<'a> {
    pub fn new(counter: &'a TokenCounter, max_tokens: usize) -> Self {
        Self {
            counter,
            budget: max_tokens.saturating_sub(counter.special_tokens()),
        }
    }

    /// Tokens a chunk's text may have.
    pub fn budget(&self) -> usize {
        self.budget
    }

    pub fn count(&self, text: &str) -> usize {
        self.counter.count(text)
    }

    /// Tokens of each line.
    pub fn count_lines(&self, lines: &[&str]) -> Vec<usize> {
        lines.iter().map(|line| self.count(line)).collect()
    }

    /// Splits text that does not fit into pieces of at most `capacity` tokens, at the most
    /// meaningful boundaries text-splitter finds (sentences, then words).
    pub fn split(&self, text: &str, capacity: usize) -> Vec<String> {
        let config = ChunkConfig::new(capacity.max(1)).with_sizer(ModelTokens(self.counter));
        TextSplitter::new(config)
            .chunks(text)
            .map(str::to_string)
            .collect()
    }

    /// `text` cut to at most `capacity` tokens, marked with an ellipsis when cut.
    pub fn truncate(&self, text: &str, capacity: usize) -> String {
        if self.count(text) <= capacity {
            return text.to_string();
        }
        let mut pieces = self.split(text, capacity.saturating_sub(1));
        let first = pieces.swap_remove(0);
        format!("{first} …")
    }
}

/// text-splitter's sizer for the model's tokenizer, through [`TokenCounter`] rather than the raw
/// `Tokenizer`: the counter has the file's padding (MiniLM pads to 128) switched off and counts
/// without special tokens, exactly as every other count here does.
struct ModelTokens<'a>(&'a TokenCounter);

impl ChunkSizer for ModelTokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.count(chunk)
    }
}
