//! Sockets and URLs: how channels reach the network. `url` is public (parsing and printing
//! channel URLs); the socket code is the runtime's.

pub(crate) mod batch;
pub(crate) mod sender_streams;
pub(crate) mod socket_file;
pub(crate) mod stream;
pub(crate) mod udp;
pub mod url;
