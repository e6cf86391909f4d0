//! Certificates: what a certificate covers, the Secrets that hold them, and which one each
//! server presents.

pub mod certificate;
pub mod credentials;
pub mod secrets;
