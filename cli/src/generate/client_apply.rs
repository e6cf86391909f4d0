//! Whether a manifest can be applied client-side. `kubectl apply` without `--server-side` copies
//! the whole object, as JSON, into the annotation `kubectl.kubernetes.io/last-applied-configuration`,
//! and the API server refuses an object whose annotations (keys and values) take more than
//! 256 KiB (`TotalAnnotationSizeLimitB`, k8s.io/apimachinery `ValidateAnnotations`): "Too long:
//! must have at most 262144 bytes". Server-side apply keeps no such copy.

use serde::Deserialize;

/// The API server's limit on an object's annotations, in bytes.
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;
/// Where client-side apply keeps its copy.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The bytes the last-applied annotation (key and value) would take for the largest document of
/// `yaml`: its compact JSON as Go writes it (`<`, `>` and `&` as six-byte escapes) and a newline.
pub fn last_applied_bytes(yaml: &str) -> Result<usize, String> {
    let mut largest = 0;
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(document).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_string(&value).map_err(|e| e.to_string())?;
        let escaped = json.bytes().filter(|b| matches!(b, b'<' | b'>' | b'&')).count() * 5;
        largest = largest.max(LAST_APPLIED.len() + json.len() + escaped + 1);
    }
    Ok(largest)
}

/// A warning for a manifest client-side apply refuses, or a note for one within a quarter of
/// the limit (other annotations share it); `None` otherwise.
pub fn advice(yaml: &str) -> Option<String> {
    let bytes = last_applied_bytes(yaml).ok()?;
    let size = format!(
        "client-side `kubectl apply` would store this manifest in its {LAST_APPLIED} annotation: {bytes} bytes, \
         of the {ANNOTATIONS_LIMIT} an object's annotations may hold"
    );
    if bytes > ANNOTATIONS_LIMIT {
        Some(format!("{size}, so the API server refuses it: apply it with `kubectl apply --server-side`"))
    } else if bytes > ANNOTATIONS_LIMIT / 4 * 3 {
        Some(format!("{size}: close to the limit; apply it with `kubectl apply --server-side`"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(hosts: usize) -> String {
        let servers: Vec<String> = (0..hosts).map(|i| format!("    - hosts: [h{i:05}.example.com]\n")).collect();
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: sni-guard\nspec:\n  \
             pluginConfig:\n    servers:\n{}",
            servers.concat()
        )
    }

    #[test]
    fn counts_the_compact_json_the_key_and_a_newline() {
        let yaml = "a: 1\n---\nb: [x, y]\n";
        // {"b":["x","y"]} is the larger document: 15 bytes.
        assert_eq!(last_applied_bytes(yaml).unwrap(), LAST_APPLIED.len() + 15 + 1);
        assert_eq!(last_applied_bytes("a: \"x&y\"\n").unwrap(), LAST_APPLIED.len() + r#"{"a":"x&y"}"#.len() + 5 + 1);
    }

    #[test]
    fn warns_over_the_limit_and_notes_near_it() {
        assert_eq!(advice(&manifest(10)), None);
        let over = advice(&manifest(10_000)).unwrap();
        assert!(over.contains("refuses it") && over.contains("--server-side"), "{over}");
        // {"hosts":["h00000.example.com"]} and a comma: 33 bytes a server.
        assert!(advice(&manifest(7_000)).unwrap().contains("close to the limit"));
        assert!(!advice(&manifest(7_000)).unwrap().contains("refuses"));
    }

    #[test]
    fn unreadable_yaml_gets_no_advice() {
        assert_eq!(advice("a: [unclosed\n"), None);
    }
}
