//! What to deploy: the filter's configuration for one gateway workload, in the manifest kind
//! asked for.

pub mod image;
pub mod manifest;
pub mod matcher;
pub mod plugin;
