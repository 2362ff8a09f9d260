//! Gives the shared library its SONAME (its ABI name): `librosco.so.MAJOR`, or
//! `librosco.so.0.MINOR` while the major version is 0 (minor releases may break the ABI).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = match major.as_str() {
        "0" => format!("0.{minor}"),
        m => m.to_string(),
    };
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    match target_os.as_str() {
        "linux" | "android" | "freebsd" => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librosco.so.{abi}")
        }
        "macos" => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/librosco.{abi}.dylib")
        }
        _ => {}
    }
    println!("cargo:rerun-if-changed=build.rs");
}
