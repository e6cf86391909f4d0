//! What this build of `sni-guard` was released with. `make release` builds it with the module's
//! sha256 and its image's manifest digest (what a WasmPlugin's `sha256` pins) in the environment,
//! read at compile time; any other build says it is unreleased.

use std::sync::OnceLock;

/// sha256 of the released `sni-guard.wasm`, as `make release` set it.
pub const MODULE_SHA256: Option<&str> = option_env!("SNI_GUARD_RELEASE_MODULE_SHA256");
/// The manifest digest of the released OCI image, as `make release` set it.
pub const IMAGE_DIGEST: Option<&str> = option_env!("SNI_GUARD_RELEASE_IMAGE_DIGEST");

/// The digests this build names: both, each 64 lower-case hex digits, or none.
pub fn digests() -> Option<(&'static str, &'static str)> {
    let hex = |d: &str| d.len() == 64 && d.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match (MODULE_SHA256, IMAGE_DIGEST) {
        (Some(module), Some(image)) if hex(module) && hex(image) => Some((module, image)),
        _ => None,
    }
}

/// What `sni-guard --version` prints after the name.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| match digests() {
        Some((module, image)) => {
            format!("{} (module sha256:{module}, image sha256:{image})", env!("CARGO_PKG_VERSION"))
        }
        None => format!("{} (unreleased build: no module digest)", env!("CARGO_PKG_VERSION")),
    })
}
