//! O2lite (specs/o2lite.md): the light client protocol of the O2 system, sans-IO.
//!
//! `message` encodes and decodes O2 message bodies and their TCP/UDP forms; `clock`
//! synchronises a client's clock to its host's global time.

pub mod client;
pub mod clock;
pub mod discovery;
mod hold;
pub mod host;
pub mod message;

/// Checks an O2 service name: 1 to 63 bytes of printable ASCII (spec §3.3; a NUL could
/// not even be sent), no `/` or `!` (they delimit addresses), and none of the reserved
/// ones: `_o2`, `_cs`, or a process name (`@...`).
pub fn check_service_name(name: &str) -> Result<(), &'static str> {
    let printable = name.bytes().all(|b| (b' '..=b'~').contains(&b));
    if name.is_empty() || name.len() > 63 || !printable || name.contains(['/', '!']) {
        return Err("a service name is 1 to 63 bytes of printable ASCII without '/' or '!'");
    }
    match name == "_o2" || name == "_cs" || name.starts_with('@') {
        true => Err("_o2, _cs and names beginning with '@' are reserved"),
        false => Ok(()),
    }
}
