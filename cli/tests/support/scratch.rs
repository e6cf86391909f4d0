//! A directory of one test's own files, under the system's temporary directory with a unique
//! name (parallel tests and runs never collide), removed when dropped.

pub struct Scratch(tempfile::TempDir);

impl Scratch {
    /// `sni-guard-{name}-XXXXXX`.
    pub fn new(name: &str) -> Scratch {
        Scratch(tempfile::Builder::new().prefix(&format!("sni-guard-{name}-")).tempdir().unwrap())
    }

    /// Writes `text` to `name` in the directory; its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}
