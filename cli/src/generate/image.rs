//! Where a WasmPlugin or TrafficExtension gets the module, and the `sha256` Istio's agent checks
//! it against: never a placeholder in a manifest meant for a cluster.
//!
//! - `oci://REPO:TAG`: the digest of the image manifest (what the agent compares for an OCI
//!   image, not the .wasm inside), read from the OCI image layout `make image` writes
//!   (`dist/oci`), or given;
//! - `https://` and `http://`: the sha256 of the .wasm file, computed from the file, or given;
//! - `file://`: Istio does not check it; written when known.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::text::shown;

/// The digest the checked-in examples carry (`--example`): it never matches a real module, so a
/// copy applied unfilled fails to load instead of running an unverified one.
pub const PLACEHOLDER_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const MANIFEST_TYPES: [&str; 2] =
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// How the module is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Oci,
    Http,
    File,
}

/// Where the `sha256` comes from (`--oci-layout`, `--wasm`, `--sha256`, `--example`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestSource {
    OciLayout(PathBuf),
    Wasm(PathBuf),
    Given(String),
    Example,
}

/// The module reference a manifest carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub url: String,
    pub scheme: Scheme,
    /// `None` only for `file://` without a digest source.
    pub sha256: Option<String>,
    /// Where `sha256` came from, for the comment above it.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError(pub String);

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(message: impl Into<String>) -> Result<T, ImageError> {
    Err(ImageError(message.into()))
}

pub fn scheme(url: &str) -> Result<Scheme, ImageError> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    let scheme = match scheme {
        "oci" => Scheme::Oci,
        "https" | "http" => Scheme::Http,
        "file" => Scheme::File,
        _ => {
            return refuse(format!(
                "--image {url:?}: expected oci://REGISTRY/REPO:TAG, https://HOST/PATH.wasm or file:///PATH.wasm \
                 (Istio takes these schemes)"
            ))
        }
    };
    if rest.is_empty() {
        return refuse(format!("--image {url:?}: nothing after {scheme:?}"));
    }
    Ok(scheme)
}

/// The reference and its digest, or why it cannot be pinned.
pub fn resolve(url: &str, source: Option<&DigestSource>) -> Result<Image, ImageError> {
    let scheme = scheme(url)?;
    let (sha256, origin) =
        match (scheme, source) {
            (_, Some(DigestSource::Example)) => (
                Some(PLACEHOLDER_SHA256.to_owned()),
                "a placeholder (--example): 64 zeros never match a module, so this copy fails to load until a real \
             digest is written (`make manifests IMAGE=...`)"
                    .to_owned(),
            ),
            (_, Some(DigestSource::Given(hex))) => (Some(given(hex)?), "given with --sha256".to_owned()),
            (Scheme::Oci, Some(DigestSource::OciLayout(layout))) => {
                let digest = layout_digest(layout, tag(url))?;
                // Not the layout's path: a manifest that goes into git is the same on every machine.
                (Some(digest), "the image manifest digest read from the OCI layout given with --oci-layout".to_owned())
            }
            (Scheme::Oci, Some(DigestSource::Wasm(_))) => return refuse(
                "an oci:// image is pinned by its manifest digest, not the .wasm's: give the OCI layout `make image` \
                 wrote (--oci-layout dist/oci) or the digest `make push` printed (--sha256)",
            ),
            (Scheme::Oci, None) => {
                return refuse(
                    "--image oci://... needs its manifest digest: --oci-layout DIR (the layout `make image` wrote, \
                 dist/oci) or --sha256 DIGEST (what `make push` printed)",
                )
            }
            (Scheme::Http | Scheme::File, Some(DigestSource::Wasm(file))) => {
                let bytes =
                    std::fs::read(file).map_err(|e| ImageError(format!("--wasm {}: cannot read: {e}", shown(file))))?;
                if !bytes.starts_with(b"\0asm") {
                    return refuse(format!("--wasm {}: not a WebAssembly module", shown(file)));
                }
                // The file's name only, not where it is on this machine.
                let name = file.file_name().map_or_else(|| shown(file), |n| shown(Path::new(n)));
                (Some(hex(&Sha256::digest(&bytes))), format!("the sha256 of {name} (--wasm)"))
            }
            (Scheme::Http | Scheme::File, Some(DigestSource::OciLayout(_))) => {
                return refuse(format!(
                    "--oci-layout is for oci:// images; {url} serves the .wasm itself: give the file (--wasm FILE) or \
                 its sha256 (--sha256)"
                ))
            }
            (Scheme::Http, None) => {
                return refuse(format!(
                    "--image {url} needs the .wasm's sha256: --wasm FILE (the file served there, e.g. \
                 dist/sni-guard.wasm) or --sha256 HEX"
                ))
            }
            (Scheme::File, None) => (None, String::new()),
        };
    Ok(Image { url: url.to_owned(), scheme, sha256, origin })
}

/// `--sha256`: 64 hex digits, with or without `sha256:`; the placeholder only with `--example`.
fn given(text: &str) -> Result<String, ImageError> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text).to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(format!("--sha256 {text:?}: expected 64 hex digits (sha256:HEX or HEX)"));
    }
    if hex == PLACEHOLDER_SHA256 {
        return refuse(
            "--sha256: 64 zeros is the examples' placeholder, which no module matches: give the real digest",
        );
    }
    Ok(hex)
}

/// The tag of `oci://REPO:TAG` (none for `@sha256:...` or a bare repository).
fn tag(url: &str) -> Option<&str> {
    let path = url.strip_prefix("oci://")?;
    if path.contains('@') {
        return None;
    }
    let last = path.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest digest (hex) in an OCI image layout: the layout's one image, or the one tagged
/// `tag`; the manifest blob must be there and hash to it.
pub fn layout_digest(layout: &Path, tag: Option<&str>) -> Result<String, ImageError> {
    let at = shown(layout);
    let index_path = layout.join("index.json");
    let text = std::fs::read(&index_path)
        .map_err(|e| ImageError(format!("--oci-layout {at}: cannot read index.json ({e}): run `make image`")))?;
    let index: Value = serde_json::from_slice(&text)
        .map_err(|e| ImageError(format!("--oci-layout {at}: index.json is not JSON: {e}")))?;
    let images: Vec<&Value> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["mediaType"].as_str().is_some_and(|t| MANIFEST_TYPES.contains(&t)))
        .collect();
    let tag_of = |m: &Value| m["annotations"][REF_NAME].as_str().map(str::to_owned);
    let chosen = match images.as_slice() {
        [] => return refuse(format!("--oci-layout {at}: index.json names no image manifest: run `make image`")),
        [only] => *only,
        many => {
            let tagged: Vec<&&Value> = many.iter().filter(|m| tag.is_some() && tag_of(m).as_deref() == tag).collect();
            match tagged.as_slice() {
                [one] => **one,
                _ => {
                    let tags: Vec<String> = many.iter().filter_map(|m| tag_of(m)).collect();
                    return refuse(format!(
                        "--oci-layout {at}: {} images ({}), and none is tagged as the --image tag {:?}",
                        many.len(),
                        tags.join(", "),
                        tag.unwrap_or("")
                    ));
                }
            }
        }
    };
    let digest = chosen["digest"].as_str().unwrap_or("");
    let Some(hex_digest) = digest.strip_prefix("sha256:").filter(|h| h.len() == 64) else {
        return refuse(format!("--oci-layout {at}: manifest digest {digest:?} is not sha256:HEX"));
    };
    let blob = layout.join("blobs").join("sha256").join(hex_digest);
    let bytes = std::fs::read(&blob)
        .map_err(|e| ImageError(format!("--oci-layout {at}: the manifest blob {digest} cannot be read: {e}")))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != hex_digest {
        return refuse(format!("--oci-layout {at}: blob {digest} hashes to sha256:{actual}: the layout is damaged"));
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OCI layout of these images in a directory of the test's own, removed when dropped.
    fn layout(images: &[(&str, &[u8])]) -> tempfile::TempDir {
        let temp = tempfile::Builder::new().prefix("sni-guard-layout-").tempdir().unwrap();
        let dir = temp.path();
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        let mut manifests = Vec::new();
        for (tag, manifest) in images {
            let digest = hex(&Sha256::digest(manifest));
            std::fs::write(dir.join("blobs/sha256").join(&digest), manifest).unwrap();
            manifests.push(serde_json::json!({"mediaType": MANIFEST_TYPES[0], "digest": format!("sha256:{digest}"),
                "size": manifest.len(), "annotations": {REF_NAME: tag}}));
        }
        std::fs::write(
            dir.join("index.json"),
            serde_json::json!({"schemaVersion": 2, "manifests": manifests}).to_string(),
        )
        .unwrap();
        temp
    }

    #[test]
    fn each_scheme_gets_the_digest_istio_checks() {
        let temp = layout(&[("0.1.0", b"{\"manifest\":1}")]);
        let dir = temp.path().to_owned();
        let expected = hex(&Sha256::digest(b"{\"manifest\":1}"));
        let oci = resolve("oci://r.test/sni-guard:0.1.0", Some(&DigestSource::OciLayout(dir.clone()))).unwrap();
        assert_eq!(oci.sha256.as_deref(), Some(expected.as_str()));
        let wasm = dir.join("m.wasm");
        std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
        let https = resolve("https://h.test/m.wasm", Some(&DigestSource::Wasm(wasm.clone()))).unwrap();
        assert_eq!(https.sha256.unwrap(), hex(&Sha256::digest(b"\0asm\x01\0\0\0")));
        assert_eq!(resolve("file:///m.wasm", None).unwrap().sha256, None);
        let given = resolve("oci://r/s:1", Some(&DigestSource::Given(format!("sha256:{}", "AB".repeat(32))))).unwrap();
        assert_eq!(given.sha256.unwrap(), "ab".repeat(32));
        let example = resolve("oci://r/s:1", Some(&DigestSource::Example)).unwrap();
        assert_eq!(example.sha256.as_deref(), Some(PLACEHOLDER_SHA256));
    }

    #[test]
    fn refuses_what_cannot_be_pinned() {
        let err = |url: &str, source: Option<DigestSource>| resolve(url, source.as_ref()).unwrap_err().0;
        assert!(err("oci://r/s:1", None).contains("--oci-layout"));
        assert!(err("https://h/m.wasm", None).contains("--wasm FILE"));
        assert!(err("oci://r/s:1", Some(DigestSource::Wasm("m.wasm".into()))).contains("manifest digest"));
        assert!(err("https://h/m.wasm", Some(DigestSource::OciLayout("dist/oci".into()))).contains("for oci://"));
        assert!(err("registry/s:1", None).contains("expected oci://"));
        assert!(err("oci://r/s:1", Some(DigestSource::Given("abc".into()))).contains("64 hex digits"));
        assert!(err("oci://r/s:1", Some(DigestSource::Given(PLACEHOLDER_SHA256.into()))).contains("placeholder"));
        assert!(err("oci://r/s:1", Some(DigestSource::OciLayout("/nonexistent".into()))).contains("make image"));
        let wasm = tempfile::Builder::new().prefix("sni-guard-not-wasm-").tempfile().unwrap();
        std::fs::write(wasm.path(), b"text").unwrap();
        let not_wasm = Some(DigestSource::Wasm(wasm.path().to_owned()));
        assert!(err("https://h/m.wasm", not_wasm).contains("not a WebAssembly module"));
    }

    #[test]
    fn a_layout_of_several_images_is_read_by_tag() {
        let temp = layout(&[("0.1.0", b"one"), ("0.2.0", b"two")]);
        let dir = temp.path().to_owned();
        let two = resolve("oci://r/s:0.2.0", Some(&DigestSource::OciLayout(dir.clone()))).unwrap();
        assert_eq!(two.sha256.unwrap(), hex(&Sha256::digest(b"two")));
        let err = resolve("oci://r/s:latest", Some(&DigestSource::OciLayout(dir.clone()))).unwrap_err().0;
        assert!(err.contains("none is tagged as the --image tag \"latest\""), "{err}");
        // A blob that does not hash to its name.
        let digest = hex(&Sha256::digest(b"one"));
        std::fs::write(dir.join("blobs/sha256").join(&digest), b"changed").unwrap();
        let err = resolve("oci://r/s:0.1.0", Some(&DigestSource::OciLayout(dir.clone()))).unwrap_err().0;
        assert!(err.contains("damaged"), "{err}");
        assert_eq!(tag("oci://r:5000/a/b:1.2"), Some("1.2"));
        assert_eq!(tag("oci://r:5000/a/b"), None);
        assert_eq!(tag("oci://r/a@sha256:00"), None);
    }
}
