//! trybuild: every misuse of `#[cancellable]` fails to compile with a
//! reviewed message (`ui/fail`), every supported shape compiles and runs
//! (`ui/pass`).
//!
//! The `.stderr` snapshots are compiler output, which changes between
//! releases, so the compile-fail suite runs only on the toolchain pinned in
//! `rust-toolchain.toml` (the one the snapshots were made with) and skips
//! itself, with a note, on any other. The pass cases always run.
//!
//! To regenerate the snapshots: `TRYBUILD=overwrite cargo test -p ctx-ui-tests`,
//! then review every changed `.stderr` as a newcomer would read it.

use std::path::Path;
use std::process::Command;

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    match pinned_toolchain_mismatch() {
        None => cases.compile_fail("tests/ui/fail/*.rs"),
        Some(why) => eprintln!("note: skipping the compile-fail cases of tests/ui/fail: {why}"),
    }
}

/// `None` if `rustc` is the version pinned in `rust-toolchain.toml`, else why not.
fn pinned_toolchain_mismatch() -> Option<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let toolchain = manifest.join("../rust-toolchain.toml");
    let pinned = match std::fs::read_to_string(&toolchain) {
        Ok(text) => text.lines().find_map(|line| {
            let value = line
                .trim()
                .strip_prefix("channel")?
                .trim()
                .strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_owned())
        }),
        Err(err) => return Some(format!("cannot read {}: {err}", toolchain.display())),
    };
    let Some(pinned) = pinned else {
        return Some(format!("no `channel` in {}", toolchain.display()));
    };
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = match Command::new(&rustc).arg("--version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(err) => return Some(format!("cannot run `rustc --version`: {err}")),
    };
    // "rustc 1.95.0 (59807616e 2026-...)"
    if version.split_whitespace().nth(1) == Some(pinned.as_str()) {
        None
    } else {
        Some(format!(
            "the snapshots were made with rustc {pinned}, this is `{}`",
            version.trim()
        ))
    }
}
