//! A directory of one test's own files, under the system's temporary directory and named by the
//! test and the process (parallel runs never collide), removed when dropped.

use std::path::PathBuf;

pub struct Scratch(PathBuf);

impl Scratch {
    /// `sni-guard-{name}-{pid}`.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sni-guard-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `text` to `name` in the directory; its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
