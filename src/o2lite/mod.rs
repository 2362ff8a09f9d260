//! O2lite (specs/o2lite.md): the light client protocol of the O2 system, sans-IO.
//!
//! `clock` synchronises a client's clock to its host's global time.

pub mod clock;
