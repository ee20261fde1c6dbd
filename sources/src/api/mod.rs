//! What every source reading a web API shares (Slack now; GitLab, Backlog, Discord later), so
//! each of them holds only what is its own: which methods it calls and what the answers mean.
//!
//! - [`client`]: `GET {base_url}/{method}` on the shared HTTP exchange, authenticated from a
//!   secret, retried on 429 and 5xx with Retry-After and back-off by the shared retry policy,
//!   counted per source and method.
//! - [`rate_limit`]: one request budget per method, sized from requests per minute and scaled
//!   by configuration; a 429 pauses its method for every task of the source, and one request
//!   probes the method before the others follow.
//! - [`server_budget`]: the budget the server's own answers state (`RateLimit-Remaining`
//!   until `RateLimit-Reset`), per user, route or bucket as the API counts; spends it evenly
//!   until the reset, on top of the fixed tiers.
//! - [`scope_driver`]: the per-scope lifecycle of an incremental source (state, order, skips,
//!   document versions, tombstones and the deletion guard, metrics); a source supplies how
//!   to read one scope.
//! - [`scope_status`]: the standing of a driver source's scopes from its cursor alone.
//! - [`settings`]: credentials from the environment and the page cap, checked alike.
//! - [`paging`]: cursor, page-number and `Link`-header pagination as streams of pages, and
//!   which reads are complete (a loop, a page that announces more but names none, a cap).

pub mod client;
pub mod paging;
pub mod rate_limit;
pub mod scope_driver;
pub mod scope_status;
pub mod server_budget;
pub mod settings;

pub use client::{AnswerCheck, ApiClient, ApiConfig, ApiError, Verdict};
pub use rate_limit::{MethodLimiters, Permit, RateLimitConfig, Tier};
pub use server_budget::{BudgetScope, ServerBudget};
