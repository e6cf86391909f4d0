//! What to deploy: the filter's configuration for one gateway workload, in the manifest kind
//! asked for.

pub mod client_apply;
pub mod image;
pub mod manifest;
pub mod matcher;
pub mod overlay;
pub mod plugin;
