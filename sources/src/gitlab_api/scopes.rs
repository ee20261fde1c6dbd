//! Which projects a run reads: the configured ones and every project of the configured
//! groups, each once.

use std::collections::BTreeSet;

use super::web::Project;
use crate::api::scope_driver::Scope;

/// The configured `projects` (as written: a path or an id), then the groups' projects by path,
/// leaving out one already configured by its path or its id. The scope id is what names the
/// project, so the same project stays the same scope from run to run.
pub(super) fn selected(configured: &[String], grouped: &[Project]) -> Vec<Scope> {
    let mut named: BTreeSet<&str> = BTreeSet::new();
    let mut scopes = Vec::new();
    for project in configured {
        if named.insert(project) {
            scopes.push(Scope {
                id: project.clone(),
                name: project.clone(),
            });
        }
    }
    for project in grouped {
        let id = project.id.to_string();
        if named.contains(id.as_str()) || !named.insert(&project.path_with_namespace) {
            continue;
        }
        scopes.push(Scope {
            id: project.path_with_namespace.clone(),
            name: project.path_with_namespace.clone(),
        });
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: u64, path: &str) -> Project {
        serde_json::from_value(serde_json::json!({"id": id, "path_with_namespace": path})).unwrap()
    }

    #[test]
    fn a_project_configured_and_in_a_group_is_read_once() {
        let configured = ["group/app".to_string(), "12".to_string()];
        let grouped = [
            project(7, "group/app"),
            project(12, "group/lib"),
            project(13, "group/sub/tool"),
            project(13, "group/sub/tool"),
        ];
        let ids: Vec<String> = selected(&configured, &grouped)
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["group/app", "12", "group/sub/tool"]);
    }
}
