pub mod eval;
pub mod inspect;
pub mod query;
pub mod run;
