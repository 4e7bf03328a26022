//! Reading the input: the options of `#[cancellable(...)]`, and the item as
//! functions.

pub(crate) mod item;
pub(crate) mod options;
