//! O2lite (specs/o2lite.md): the light client protocol of the O2 system, sans-IO.
//!
//! `message` encodes and decodes O2 message bodies and their TCP/UDP forms; `clock`
//! synchronises a client's clock to its host's global time.

pub mod client;
pub mod clock;
pub mod discovery;
pub mod host;
pub mod message;
