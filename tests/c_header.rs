//! `include/rosco.h` is what cbindgen makes of `src/ffi` today; it fails with a diff when
//! the checked-in header is stale. Refresh: `ROSCO_UPDATE_HEADER=1 cargo test --test c_header`.

use std::path::Path;

#[test]
fn header_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    assert!(
        !generated.contains("Option_"),
        "an Option<fn> alias leaked into the header"
    );
    // The Rust API's public constants are not the C API's: unprefixed, they would also
    // clash with names in C programs (cbindgen.toml's `exclude`).
    let leaked: Vec<&str> = generated
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !name.starts_with("ROSCO_") && !name.starts_with("rosco_"))
        .collect();
    assert!(
        leaked.is_empty(),
        "unprefixed macros in the header: {leaked:?}"
    );
    let path = root.join("include/rosco.h");
    if std::env::var_os("ROSCO_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != generated {
        let diff: Vec<String> = current
            .lines()
            .zip(generated.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  checked in: {a}\n  generated:  {b}", i + 1))
            .collect();
        panic!(
            "include/rosco.h is stale ({} vs {} lines); refresh with ROSCO_UPDATE_HEADER=1 cargo test --test c_header\n{}",
            current.lines().count(),
            generated.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn version_macros_match_the_crate() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("cbindgen.toml"))
            .unwrap();
    for (name, value) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define ROSCO_VERSION_{name} {value}");
        assert!(
            header.contains(&line),
            "cbindgen.toml lacks '{line}' (keep it in step with Cargo.toml)"
        );
    }
}
