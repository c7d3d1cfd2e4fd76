//! Build script of netinv-tomo: sets `cfg(netinv_avx512)` when the compiler is Rust 1.89 or
//! newer, the first release with stable AVX-512 intrinsics. The crate's minimum Rust is
//! older (the workspace's `rust-version`); with an older compiler the matrix-free
//! projector's AVX-512 loops are left out and `SimdPath::Avx512` reports itself
//! unsupported (the AVX2 and portable loops give the same bits).

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netinv_avx512)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| {
            // "rustc 1.95.0 (abcdef 2026-..)"
            let version = text.split_whitespace().nth(1)?.to_string();
            let mut parts = version.split('.');
            let major: u32 = parts.next()?.parse().ok()?;
            let minor: u32 = parts.next()?.parse().ok()?;
            Some(if major > 1 { u32::MAX } else { minor })
        });
    if minor.is_some_and(|m| m >= 89) {
        println!("cargo::rustc-cfg=netinv_avx512");
    }
}
