//! Lays out the release binary's code with the functions that start-up,
//! an idle broker and the request paths run placed first
//! (`build/hot-functions.txt`, written by `scripts/hot-functions.sh`).
//!
//! Why: the kernel maps a binary's code 64 KB around each page fault
//! (fault-around), and start-up alone touches code in about 200 places
//! spread over the 18 MB of `.text`, so an idle broker held 17 MB of its
//! binary resident. With those functions side by side it holds about 7:
//! idle RSS 20.7 → 11.2 MB (issue 23, target 3a). The speed is the same
//! or better (the hot code shares cache lines and pages).
//!
//! Only for release builds of the `chartbroker` binary, and only where the
//! toolchain ships its own `lld` (rustup's, 1.90 and later by default on
//! x86-64 Linux), which understands `--symbol-ordering-file`; a linker the
//! user configured is left alone. Names the list has and the binary lacks
//! (code changed since the list was written) are skipped: a stale list
//! costs memory, never correctness.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let list = Path::new(&env("CARGO_MANIFEST_DIR")).join("build/hot-functions.txt");
    println!("cargo:rerun-if-changed=build/hot-functions.txt");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    if env("PROFILE") != "release" || !list.exists() || user_linker() {
        return;
    }
    let Some(lld) = toolchain_lld() else {
        return;
    };
    for arg in [
        "-fuse-ld=lld".to_string(),
        format!("-B{}", lld.display()),
        format!("-Wl,--symbol-ordering-file={}", list.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// Whether the user chose a linker (for this target, or by flags).
fn user_linker() -> bool {
    let target = env("TARGET").to_uppercase().replace('-', "_");
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    std::env::var_os(format!("CARGO_TARGET_{target}_LINKER")).is_some()
        || flags.contains("linker")
        || flags.contains("fuse-ld")
}

/// The folder holding the toolchain's own `ld.lld` for the target (rustc's
/// `gcc-ld`), if it has one.
fn toolchain_lld() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC")?;
    let out = Command::new(rustc)
        .arg("--print")
        .arg("sysroot")
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(env("TARGET"))
        .join("bin/gcc-ld");
    dir.join("ld.lld").exists().then_some(dir)
}
