//! What a file's bytes and name say about it, once for every source that reads files (the
//! `files` source from a directory, the `gitlab` source from a repository): whether it is text
//! at all, and which document kind (so which chunking strategy) and language its extension
//! calls for.

use kass_pipeline::DocumentKind;

/// How far into a file a NUL byte is looked for (git's own binary test looks at the first
/// 8,000 bytes).
const SNIFF: usize = 8192;

/// The file's text, or `None` for a binary (a NUL byte near its start) or non-UTF-8 file:
/// such files are skipped, counted under `kass_records_dropped_total{reason="binary"}`.
pub(crate) fn decode(bytes: Vec<u8>) -> Option<String> {
    if bytes[..bytes.len().min(SNIFF)].contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// The (lower-case) extension of a `/`- or `\`-separated path's file name; empty if none.
pub(crate) fn extension(path: &str) -> String {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// The document kind for a (lower-case) extension, and the language for code: Markdown goes
/// to the prose strategy with its headings, code to the code strategy, the rest as plain text.
pub(crate) fn kind_of(extension: &str) -> (DocumentKind, Option<&'static str>) {
    let language = match extension {
        "md" | "markdown" | "mdx" => return (DocumentKind::Markdown, None),
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "tsx" => "typescript",
        "go" => "go",
        "java" => "java",
        "c" | "h" => "c",
        "cpp" | "hpp" | "cc" | "cxx" | "hh" => "cpp",
        "rb" => "ruby",
        "php" => "php",
        "cs" => "csharp",
        "kt" | "kts" => "kotlin",
        "swift" => "swift",
        "scala" => "scala",
        "sh" | "bash" | "zsh" => "shell",
        "sql" => "sql",
        "r" => "r",
        "lua" => "lua",
        _ => return (DocumentKind::Text, None),
    };
    (DocumentKind::CodeFile, Some(language))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_extensions() {
        assert_eq!(kind_of("md"), (DocumentKind::Markdown, None));
        assert_eq!(kind_of("mdx"), (DocumentKind::Markdown, None));
        assert_eq!(kind_of("rs"), (DocumentKind::CodeFile, Some("rust")));
        assert_eq!(kind_of("r"), (DocumentKind::CodeFile, Some("r")));
        assert_eq!(kind_of("tsx"), (DocumentKind::CodeFile, Some("typescript")));
        assert_eq!(kind_of("toml"), (DocumentKind::Text, None));
        assert_eq!(kind_of("rst"), (DocumentKind::Text, None));
        assert_eq!(kind_of(""), (DocumentKind::Text, None));
    }

    #[test]
    fn extensions_of_paths() {
        assert_eq!(extension("src/Main.RS"), "rs");
        assert_eq!(extension("docs/v1.2/README"), "");
        assert_eq!(extension(".gitignore"), "");
        assert_eq!(extension("a\\b.md"), "md");
    }

    #[test]
    fn nul_bytes_or_invalid_utf8_are_binary() {
        assert_eq!(
            decode(b"fn main() {}\n".to_vec()).as_deref(),
            Some("fn main() {}\n")
        );
        assert_eq!(decode(b"PNG\0\0\x01".to_vec()), None);
        assert_eq!(decode(vec![0xff, 0xfe, b'a']), None);
        assert_eq!(decode(Vec::new()).as_deref(), Some(""));
    }
}
