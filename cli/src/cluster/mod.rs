//! Reading the cluster: what `kubectl get` wrote, into servers, Services and Secrets.

pub mod documents;
pub mod gateways;
pub mod inventory;
pub mod model;
pub mod names;
pub mod secrets;
pub mod services;
pub mod shape;
