//! What the `include` list of a `backlog` source asks to read of each project.

/// The parts of a project a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Include {
    pub issues: bool,
    pub wikis: bool,
    pub documents: bool,
}

impl Include {
    /// `issues`, `wikis`, `documents`; an error names the one unknown.
    pub fn parse(include: &[String]) -> Result<Self, String> {
        let mut parts = Include {
            issues: false,
            wikis: false,
            documents: false,
        };
        for what in include {
            match what.as_str() {
                "issues" => parts.issues = true,
                "wikis" => parts.wikis = true,
                "documents" => parts.documents = true,
                other => {
                    return Err(format!(
                        "include: `{other}` is not one of issues, wikis, documents"
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
        let all: Vec<String> = ["issues", "wikis", "documents"].map(String::from).to_vec();
        let parts = Include::parse(&all).unwrap();
        assert!(parts.issues && parts.wikis && parts.documents);
        let error = Include::parse(&["files".to_string()]).unwrap_err();
        assert!(error.contains("`files`"), "{error}");
    }
}
