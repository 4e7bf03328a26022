//! Every identifier the expansion introduces, in one place.
//!
//! They are `Span::mixed_site()` identifiers: the body can neither see them
//! nor collide with them, whatever it names its own locals. Those that name
//! generated code only may take the user's location (`at`), so that a type
//! error about them is reported where the user wrote the `.await`.

use proc_macro2::{Ident, Span};

/// The names, as the documentation (lib.rs) spells them.
#[cfg(test)]
pub(crate) const NAMES: [&str; 10] = [
    WATCH, EXIT, ERR, FUT, VALUE, CHILD, GUARD, SELECT, OUT, JOINED,
];

/// The `Watch` of the call, that every raced await polls.
pub(crate) const WATCH: &str = "__ctx_watch";
/// The closure that turns a cancellation into the fn's `Err`.
pub(crate) const EXIT: &str = "__ctx_exit";
/// The cancellation being returned.
pub(crate) const ERR: &str = "__ctx_err";
/// The future of a raced await.
pub(crate) const FUT: &str = "__ctx_fut";
/// The output of a raced await.
pub(crate) const VALUE: &str = "__ctx_value";
/// The child context of a `timeout`.
pub(crate) const CHILD: &str = "__ctx_child";
/// Its `CancelHandle`, cancelled when the call returns.
pub(crate) const GUARD: &str = "__ctx_guard";
/// The state of one raced `select!`.
pub(crate) const SELECT: &str = "__ctx_select";
/// The output a select branch's pattern is tested against.
pub(crate) const OUT: &str = "__ctx_out";
/// The prefix of the bindings of a raced `join!`'s arguments.
pub(crate) const JOINED: &str = "__ctx_joined";

/// `name`, hygienic.
pub(crate) fn ident(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `name`, hygienic, located at `at` (for error messages).
pub(crate) fn ident_at(name: &str, at: Span) -> Ident {
    Ident::new(name, Span::mixed_site().located_at(at))
}

/// The binding of the `i`th argument of a raced `join!`.
pub(crate) fn joined(i: usize) -> Ident {
    ident(&format!("{JOINED}{i}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_name_is_prefixed_and_distinct() {
        let mut names = super::NAMES.to_vec();
        assert!(names.iter().all(|name| name.starts_with("__ctx_")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::NAMES.len());
    }
}
