//! What a user applies, read back: the filter's verdict on each configuration, and drift from
//! the Gateways.

pub mod check;
pub mod drift;
pub mod read;
