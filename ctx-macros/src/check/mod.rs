//! The checks: the signature (`ctx` first, a `Result`) and the footguns of
//! a body.

pub(crate) mod body;
pub(crate) mod signature;
