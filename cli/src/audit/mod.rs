//! The audit: conflicts between servers a browser can coalesce, their fixes, the report, and
//! merged Gateways.

pub mod advice;
pub mod conflicts;
pub mod index;
pub mod merge;
pub mod passthrough;
pub mod report;
