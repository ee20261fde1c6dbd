//! What the GitLab sources share (`gitlab_api`, `gitlab_export`): one shape of issues and notes
//! ([`model`]) and one document per issue or merge request ([`documents`]), so a project loaded
//! from its export and continued through the API keeps its documents and chunk ids.

pub(crate) mod documents;
pub(crate) mod model;
