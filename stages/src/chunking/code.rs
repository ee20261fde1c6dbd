//! Code: whole top-level blocks, packed.
//!
//! A block starts at a line with no indentation, outside any bracket, string or comment, whose
//! previous line is blank or closed a block (ends in `}` or `;`; for indentation
//! languages such as Python, an indented line also ends a block). Consecutive blocks are packed
//! up to the budget. A block over the budget is split at the blank lines inside it, then at line
//! boundaries; only a single line over the budget is cut inside, by text-splitter.

use kass_pipeline::Document;

use super::{base_metadata, metadata_path, pack, Draft, Sizer};

/// How a language writes comments and strings, as far as finding brackets needs.
struct Syntax {
    name: &'static str,
    line_comment: &'static [&'static str],
    block_comment: Option<(&'static str, &'static str)>,
    /// `'...'` is a string; otherwise a quote starts a character literal only when it looks
    /// like one (`'x'`, `'\n'`), which keeps Rust lifetimes out of the way.
    single_quote_strings: bool,
    /// `` `...` `` is a string that may span lines (JavaScript, Go).
    backtick_strings: bool,
    /// `"""` and `'''` strings (Python).
    triple_quotes: bool,
    /// Blocks are made by indentation (Python): an indented line ends a block.
    indented_blocks: bool,
}

const C_LIKE: Syntax = Syntax {
    name: "",
    line_comment: &["//"],
    block_comment: Some(("/*", "*/")),
    single_quote_strings: false,
    backtick_strings: false,
    triple_quotes: false,
    indented_blocks: false,
};

const HASH: Syntax = Syntax {
    name: "",
    line_comment: &["#"],
    block_comment: None,
    single_quote_strings: true,
    backtick_strings: false,
    triple_quotes: false,
    indented_blocks: false,
};

fn syntax(path: &str) -> Syntax {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let ext = file
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let c_like = |name| Syntax { name, ..C_LIKE };
    match ext.as_str() {
        "rs" => c_like("rust"),
        "c" | "h" => c_like("c"),
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => c_like("cpp"),
        "cs" => c_like("csharp"),
        "java" => c_like("java"),
        "kt" | "kts" => c_like("kotlin"),
        "scala" => c_like("scala"),
        "swift" => c_like("swift"),
        "go" => Syntax {
            backtick_strings: true,
            ..c_like("go")
        },
        "js" | "mjs" | "cjs" | "jsx" => Syntax {
            single_quote_strings: true,
            backtick_strings: true,
            ..c_like("javascript")
        },
        "ts" | "tsx" | "mts" => Syntax {
            single_quote_strings: true,
            backtick_strings: true,
            ..c_like("typescript")
        },
        "php" => Syntax {
            single_quote_strings: true,
            ..c_like("php")
        },
        "py" | "pyi" => Syntax {
            name: "python",
            triple_quotes: true,
            indented_blocks: true,
            ..HASH
        },
        "rb" => Syntax {
            name: "ruby",
            ..HASH
        },
        "sh" | "bash" | "zsh" => Syntax {
            name: "shell",
            ..HASH
        },
        "toml" => Syntax {
            name: "toml",
            ..HASH
        },
        "yaml" | "yml" => Syntax {
            name: "yaml",
            indented_blocks: true,
            ..HASH
        },
        "sql" => Syntax {
            name: "sql",
            line_comment: &["--"],
            block_comment: Some(("/*", "*/")),
            ..HASH
        },
        "lua" => Syntax {
            name: "lua",
            line_comment: &["--"],
            ..HASH
        },
        _ => Syntax {
            name: "",
            line_comment: &[],
            block_comment: None,
            ..HASH
        },
    }
}

pub(crate) fn chunk(doc: &Document, sizer: &Sizer) -> Vec<Draft> {
    let text = doc.text.as_deref().unwrap_or_default();
    let path = metadata_path(doc).unwrap_or(&doc.id);
    let syntax = syntax(path);

    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let tokens = sizer.count_lines(&lines);
    let mut prefix = Vec::with_capacity(lines.len() + 1);
    prefix.push(0);
    for t in &tokens {
        prefix.push(prefix.last().copied().unwrap_or(0) + t);
    }

    let chunker = Chunker {
        lines: &lines,
        prefix: &prefix,
        sizer,
    };
    let mut pieces = Vec::new();
    let blocks = block_starts(&lines, &syntax);
    chunker.split(&ranges(&blocks, 0, lines.len()), Level::Blocks, &mut pieces);

    let mut base = base_metadata(doc);
    base.insert("path".into(), path.into());
    if !syntax.name.is_empty() {
        base.insert("language".into(), syntax.name.into());
    }
    pieces
        .into_iter()
        .map(|piece| {
            let mut metadata = base.clone();
            metadata.insert("start_line".into(), (piece.first_line + 1).into());
            metadata.insert("end_line".into(), (piece.last_line + 1).into());
            Draft {
                text: piece.text,
                metadata,
                tokens: None,
            }
        })
        .collect()
}

struct Piece {
    text: String,
    /// 0-based, of the first and last non-blank lines.
    first_line: usize,
    last_line: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Blocks,
    Paragraphs,
    Lines,
}

struct Chunker<'a> {
    lines: &'a [&'a str],
    prefix: &'a [usize],
    sizer: &'a Sizer<'a>,
}

impl Chunker<'_> {
    fn tokens(&self, range: &std::ops::Range<usize>) -> usize {
        self.prefix[range.end] - self.prefix[range.start]
    }

    /// Packs consecutive `groups` (line ranges) up to the budget; a group over it is split at
    /// the next finer level.
    fn split(&self, groups: &[std::ops::Range<usize>], level: Level, out: &mut Vec<Piece>) {
        let budget = self.sizer.budget();
        let sizes: Vec<usize> = groups.iter().map(|g| self.tokens(g)).collect();
        for packed in pack(&sizes, budget) {
            let lines = groups[packed.start].start..groups[packed.end - 1].end;
            if packed.len() > 1 || sizes[packed.start] <= budget {
                self.emit(lines, out);
                continue;
            }
            match level {
                Level::Blocks => {
                    let starts = paragraph_starts(self.lines, lines.clone());
                    self.split(
                        &ranges(&starts, lines.start, lines.end),
                        Level::Paragraphs,
                        out,
                    );
                }
                Level::Paragraphs => {
                    let singles: Vec<_> = lines.clone().map(|l| l..l + 1).collect();
                    self.split(&singles, Level::Lines, out);
                }
                Level::Lines => {
                    for text in self.sizer.split(self.lines[lines.start], budget) {
                        out.push(Piece {
                            text,
                            first_line: lines.start,
                            last_line: lines.start,
                        });
                    }
                }
            }
        }
    }

    fn emit(&self, lines: std::ops::Range<usize>, out: &mut Vec<Piece>) {
        let blank = |l: &usize| self.lines[*l].trim().is_empty();
        let Some(first) = lines.clone().find(|l| !blank(l)) else {
            return;
        };
        let last = lines.clone().rev().find(|l| !blank(l)).unwrap_or(first);
        out.push(Piece {
            text: self.lines[first..=last].join("\n"),
            first_line: first,
            last_line: last,
        });
    }
}

/// Consecutive ranges `[starts[i], starts[i+1])`, the first from `start`, the last to `end`.
fn ranges(starts: &[usize], start: usize, end: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::with_capacity(starts.len() + 1);
    let mut from = start;
    for &s in starts.iter().filter(|&&s| s > start && s < end) {
        out.push(from..s);
        from = s;
    }
    if from < end {
        out.push(from..end);
    }
    out
}

/// Lines inside `lines` that follow a blank line and are not blank themselves.
fn paragraph_starts(all: &[&str], lines: std::ops::Range<usize>) -> Vec<usize> {
    lines
        .filter(|&l| l > 0 && all[l - 1].trim().is_empty() && !all[l].trim().is_empty())
        .collect()
}

/// Where the lexer is at the end of a line.
#[derive(Default, Clone, Copy)]
struct Scan {
    depth: usize,
    /// Inside a block comment, a multi-line string or a triple-quoted string.
    open: Option<Open>,
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    BlockComment,
    Str(u8),
    Triple(u8),
}

/// Line indices (0-based) where a new top-level block begins.
fn block_starts(lines: &[&str], syntax: &Syntax) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut scan = Scan::default();
    let mut prev_closes = false;
    let mut prev_blank = true;
    let mut prev_indented = false;
    for (i, line) in lines.iter().enumerate() {
        let blank = line.trim().is_empty();
        let top_level = scan.depth == 0 && scan.open.is_none();
        let starts_block = top_level
            && !blank
            && !line.starts_with([' ', '\t'])
            && (prev_blank || prev_closes || (syntax.indented_blocks && prev_indented));
        if i > 0 && starts_block {
            starts.push(i);
        }
        let was_open = scan.open.is_some();
        let last = scan_line(line.as_bytes(), &mut scan, syntax);
        if !blank {
            prev_closes =
                scan.depth == 0 && scan.open.is_none() && matches!(last, Some(b'}' | b';'));
            prev_indented = !was_open && line.starts_with([' ', '\t']);
        }
        prev_blank = blank && scan.open.is_none();
    }
    starts
}

/// Advances `scan` over one line; returns the line's last significant byte (outside comments).
fn scan_line(line: &[u8], scan: &mut Scan, syntax: &Syntax) -> Option<u8> {
    let mut last = None;
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        match scan.open {
            Some(Open::BlockComment) => {
                let (_, close) = syntax.block_comment.unwrap_or(("/*", "*/"));
                if rest.starts_with(close.as_bytes()) {
                    scan.open = None;
                    i += close.len();
                } else {
                    i += 1;
                }
                continue;
            }
            Some(Open::Str(q)) => {
                if rest[0] == b'\\' {
                    i += 2;
                } else {
                    if rest[0] == q {
                        scan.open = None;
                        last = Some(q);
                    }
                    i += 1;
                }
                continue;
            }
            Some(Open::Triple(q)) => {
                if rest.starts_with(&[q, q, q]) {
                    scan.open = None;
                    last = Some(q);
                    i += 3;
                } else {
                    i += if rest[0] == b'\\' { 2 } else { 1 };
                }
                continue;
            }
            None => {}
        }
        if syntax
            .line_comment
            .iter()
            .any(|c| rest.starts_with(c.as_bytes()))
        {
            break;
        }
        if let Some((open, _)) = syntax.block_comment {
            if rest.starts_with(open.as_bytes()) {
                scan.open = Some(Open::BlockComment);
                i += open.len();
                continue;
            }
        }
        let b = rest[0];
        match b {
            b'"' | b'\'' if syntax.triple_quotes && rest.starts_with(&[b, b, b]) => {
                scan.open = Some(Open::Triple(b));
                i += 3;
                continue;
            }
            b'"' => scan.open = Some(Open::Str(b'"')),
            b'`' if syntax.backtick_strings => scan.open = Some(Open::Str(b'`')),
            b'\'' if syntax.single_quote_strings => scan.open = Some(Open::Str(b'\'')),
            b'\'' => {
                // A character literal ('x', '\n', '\u{1F600}'); anything else is a lifetime.
                if let Some(len) = char_literal_len(rest) {
                    i += len;
                    last = Some(b'\'');
                    continue;
                }
            }
            b'{' | b'(' | b'[' => scan.depth += 1,
            b'}' | b')' | b']' => scan.depth = scan.depth.saturating_sub(1),
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            last = Some(b);
        }
        i += 1;
    }
    if scan.open == Some(Open::Str(b'\'')) {
        // Single-quoted strings do not span lines in the languages that have them.
        scan.open = None;
    }
    last
}

fn char_literal_len(rest: &[u8]) -> Option<usize> {
    if rest.get(1) == Some(&b'\\') {
        let close = rest.iter().skip(2).take(10).position(|&b| b == b'\'')?;
        return Some(close + 3);
    }
    let width = match rest.get(1)? {
        b if *b < 0x80 => 1,
        b if *b >= 0xF0 => 4,
        b if *b >= 0xE0 => 3,
        _ => 2,
    };
    (rest.get(1 + width) == Some(&b'\'')).then_some(width + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(src: &str, path: &str) -> Vec<usize> {
        let lines: Vec<&str> = src.lines().collect();
        block_starts(&lines, &syntax(path))
    }

    #[test]
    fn rust_blocks_start_after_closed_items_not_inside_where_clauses() {
        let src = "use a::b;\nuse c::d;\n\n/// Doc.\n#[inline]\nfn f<T>(x: T) -> u32\nwhere\n    T: Clone,\n{\n    let s = \"}\";\n    let c = '{';\n\n    1\n}\nfn g<'a>(x: &'a str) {\n}\n";
        assert_eq!(starts(src, "src/lib.rs"), vec![1, 3, 14]);
    }

    #[test]
    fn python_blocks_end_at_dedent_and_skip_docstrings() {
        let src = "import os\ndef f():\n    \"\"\"Doc.\n\ndef not_a_block\n    \"\"\"\n    return 1\n@decorator\ndef g():\n    pass\n";
        assert_eq!(starts(src, "x.py"), vec![7]);
    }

    #[test]
    fn languages_come_from_the_extension() {
        assert_eq!(syntax("a/b.rs").name, "rust");
        assert_eq!(syntax("B.PY").name, "python");
        assert_eq!(syntax("Makefile").name, "");
    }
}
