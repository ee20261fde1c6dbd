pub mod dead_letters;
pub mod embed;
pub mod eval;
pub mod inspect;
pub mod query;
pub mod run;
pub mod status;
pub mod triggers;
