//! What the `include` list of a `gitlab` source asks to read of each project.

use crate::gitlab::model::Kind;

/// The parts of a project a source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Include {
    /// Issues and merge requests.
    pub kinds: Vec<Kind>,
    /// The wiki's pages (`wiki`).
    pub wiki: bool,
    /// The repository's files at `code_ref` (`code`).
    pub code: bool,
}

impl Include {
    /// `issues`, `merge_requests`, `wiki`, `code`; an error names the one unknown.
    pub fn parse(include: &[String]) -> Result<Self, String> {
        let mut parts = Include {
            kinds: Vec::new(),
            wiki: false,
            code: false,
        };
        for what in include {
            match what.as_str() {
                "wiki" => parts.wiki = true,
                "code" => parts.code = true,
                "issues" | "merge_requests" => {
                    parts
                        .kinds
                        .extend(Kind::parse_include(std::slice::from_ref(what))?);
                }
                other => {
                    return Err(format!(
                        "include: `{other}` is not one of issues, merge_requests, wiki, code"
                    ))
                }
            }
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_parses_and_an_unknown_one_is_named() {
        let all: Vec<String> = ["issues", "merge_requests", "wiki", "code"]
            .map(String::from)
            .to_vec();
        let parts = Include::parse(&all).unwrap();
        assert_eq!(parts.kinds, vec![Kind::Issues, Kind::MergeRequests]);
        assert!(parts.wiki && parts.code);
        let error = Include::parse(&["snippets".to_string()]).unwrap_err();
        assert!(
            error.contains("`snippets`") && error.contains("wiki, code"),
            "{error}"
        );
    }
}
