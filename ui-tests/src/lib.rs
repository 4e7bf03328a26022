//! The compile-fail and pass cases live in `tests/ui/`.
