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
    version_mismatch(&pinned, &version)
}

/// `None` if the output of `rustc --version` names the `pinned` version.
fn version_mismatch(pinned: &str, version: &str) -> Option<String> {
    // "rustc 1.95.0 (59807616e 2026-...)"
    if version.split_whitespace().nth(1) == Some(pinned) {
        None
    } else {
        Some(format!(
            "the snapshots were made with rustc {pinned}, this is `{}`",
            version.trim()
        ))
    }
}

#[test]
fn other_compilers_skip_the_compile_fail_cases() {
    assert_eq!(
        version_mismatch("1.95.0", "rustc 1.95.0 (59807616e 2026-04-14)\n"),
        None
    );
    assert!(version_mismatch("1.95.0", "rustc 1.96.0 (0123456789 2026-05-28)").is_some());
    assert!(version_mismatch("1.95.0", "rustc 1.95.0-nightly (abc 2026-01-01)").is_some());
    assert!(version_mismatch("1.95.0", "").is_some());
}
