//! Behaviour tests across `ctx-runtime` and `ctx-macros` live in `tests/`.
//!
//! The README's code is compiled and run here as a doctest, so the quick
//! start can never drift from the API.
// Only when collecting doctests: `cargo package --workspace` builds this
// package from its tarball, where the README is not at `../../`.
#![cfg_attr(doctest, doc = include_str!("../../README.md"))]
