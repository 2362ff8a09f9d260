//! The C API (`include/rosco.h`, generated from this module by cbindgen).
//!
//! This layer holds no logic: it checks arguments, converts types, looks handles up and
//! calls the Rust API. Every entry point runs behind `status::guard`, so a failure becomes
//! a negative `rosco_status` with a thread-local detail (`rosco_last_error`), and a panic
//! becomes `ROSCO_ERR_INTERNAL`; nothing unwinds into C.
#![allow(non_camel_case_types)]

pub mod builder;
pub mod channel;
pub mod context;
pub mod handles;
pub mod hook;
pub mod method;
pub mod msg;
pub mod o2lite;
pub mod source_names;
pub mod status;
pub mod subscription;
pub mod time;
