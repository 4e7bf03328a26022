//! Behaviour tests across `ctx-runtime` and `ctx-macros` live in `tests/`.
//!
//! The README's code is compiled and run here as a doctest, so the quick
//! start can never drift from the API.
#![doc = include_str!("../../README.md")]
