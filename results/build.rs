//! Records the compiler version and build profile for the run provenance (meta.json), since a
//! running binary cannot ask which rustc built it.

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=QCNN_RUSTC_VERSION={version}");
    for (var, key) in [
        ("PROFILE", "QCNN_BUILD_PROFILE"),
        ("OPT_LEVEL", "QCNN_OPT_LEVEL"),
        ("TARGET", "QCNN_BUILD_TARGET"),
    ] {
        let value = std::env::var(var).unwrap_or_else(|_| "unknown".to_string());
        println!("cargo:rustc-env={key}={value}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
