//! ARCHITECTURE.md's tables, held to the code: each module of the logic (`src/`), of the glue
//! (`wasm/src/`) and of the CLI (`cli/src/`, one folder a job) imports only what its row allows,
//! the rows form a stack, and the logic names no part of the glue or of the ABI. Test modules (`#[cfg(test)]` to the end of a file) may use
//! anything and are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The logic's, the glue's and the CLI's tables: module name to the modules it may import.
struct Map {
    logic: BTreeMap<String, BTreeSet<String>>,
    glue: BTreeMap<String, BTreeSet<String>>,
    cli: BTreeMap<String, BTreeSet<String>>,
}

fn read(path: &str) -> String {
    let path = Path::new(ROOT).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rows of the table under each `## ` heading that names the crate's directory.
fn architecture() -> Map {
    let text = read("ARCHITECTURE.md");
    let mut map = Map { logic: BTreeMap::new(), glue: BTreeMap::new(), cli: BTreeMap::new() };
    let mut table = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            table = if heading.contains("(`src/`)") {
                Some(&mut map.logic)
            } else if heading.contains("(`wasm/src/`)") {
                Some(&mut map.glue)
            } else if heading.contains("(`cli/src/`)") {
                Some(&mut map.cli)
            } else {
                None
            };
            continue;
        }
        let Some(rows) = table.as_deref_mut() else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| module | job | may import |`: five pieces around four bars.
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1].trim_matches('`').to_string();
        let allowed = match cells[3] {
            "nothing" => BTreeSet::new(),
            list => list.split(", ").map(|m| m.trim_matches('`').to_string()).collect(),
        };
        assert!(rows.insert(module.clone(), allowed).is_none(), "ARCHITECTURE.md lists `{module}` twice");
    }
    assert!(
        !map.logic.is_empty() && !map.glue.is_empty() && !map.cli.is_empty(),
        "ARCHITECTURE.md: no module tables found"
    );
    map
}

/// A file's code outside its tests, without comment lines.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a file's code names under `prefix` (`crate::`, `super::`, `sni_guard::`):
/// `crate::config::Settings` and `use crate::{hostcalls, logger}` alike.
fn named(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: the first name of each.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        modules.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            modules.insert(ident(rest));
        }
    }
    modules.remove("self");
    modules
}

fn ident(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// Every `.rs` file directly in `dir`, by module name.
fn modules(dir: &str) -> BTreeMap<String, String> {
    let path = Path::new(ROOT).join(dir);
    let entries = std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut found = BTreeMap::new();
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if entry.path().is_dir() {
            panic!("{dir}/{name}: a directory module; ARCHITECTURE.md and this test know flat files only");
        }
        if let Some(module) = name.strip_suffix(".rs") {
            found.insert(module.to_string(), code(&entry.path()));
        }
    }
    found
}

/// The CLI's modules by path (`cluster::model` for `cli/src/cluster/model.rs`): the files
/// directly in `cli/src` and in its folders, one level deep; `lib.rs`, `main.rs` and each
/// folder's `mod.rs` declare modules and are returned apart.
fn cli_modules() -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let root = Path::new(ROOT).join("cli/src");
    let (mut modules, mut declarations) = (BTreeMap::new(), BTreeMap::new());
    let mut entries: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            for file in std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()) {
                let file_name = file.file_name().unwrap().to_str().unwrap().to_string();
                assert!(!file.is_dir(), "cli/src/{name}/{file_name}: folders are one level deep");
                match file_name.strip_suffix(".rs") {
                    Some("mod") => declarations.insert(format!("{name}/mod.rs"), code(&file)),
                    Some(module) => modules.insert(format!("{name}::{module}"), code(&file)),
                    None => None,
                };
            }
        } else if let Some(module) = name.strip_suffix(".rs") {
            match module {
                "lib" | "main" => declarations.insert(name.clone(), code(&path)),
                _ => modules.insert(module.to_string(), code(&path)),
            };
        }
    }
    (modules, declarations)
}

/// The CLI modules a file's code names: `crate::text::wrap` is `text`, `crate::cluster::model`
/// and `crate::cluster::{model, services::Service}` name modules of the folder `cluster`, and
/// `super::model` in a folder is that folder's.
fn cli_named(code: &str, folder: Option<&str>, folders: &BTreeSet<String>) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for top in named(code, "crate::") {
        if !folders.contains(&top) {
            modules.insert(top);
        }
    }
    for top in folders {
        for inner in named(code, &format!("crate::{top}::")) {
            modules.insert(format!("{top}::{inner}"));
        }
    }
    if let Some(folder) = folder {
        modules.extend(named(code, "super::").into_iter().map(|m| format!("{folder}::{m}")));
    }
    modules
}

#[test]
fn the_cli_imports_only_what_its_row_allows() {
    let map = architecture();
    let (files, declarations) = cli_modules();
    let listed: BTreeSet<&String> = map.cli.keys().collect();
    let present: BTreeSet<&String> = files.keys().collect();
    assert_eq!(listed, present, "ARCHITECTURE.md's CLI table and the modules in cli/src/ differ");
    let folders: BTreeSet<String> =
        files.keys().filter_map(|m| m.split_once("::")).map(|(folder, _)| folder.to_string()).collect();
    for (module, code) in &files {
        let folder = module.split_once("::").map(|(folder, _)| folder);
        let imports = cli_named(code, folder, &folders);
        let allowed = map.cli.get(module).cloned().unwrap_or_default();
        let extra: Vec<&String> = imports.difference(&allowed).collect();
        assert!(extra.is_empty(), "cli/src: `{module}` imports {extra:?}; ARCHITECTURE.md allows {allowed:?}");
    }
    for (file, code) in declarations.iter().filter(|(f, _)| f.ends_with("mod.rs") || *f == "lib.rs") {
        for line in code.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(
                line.starts_with("pub mod ") || line.starts_with("#[") || line.starts_with("pub(crate) mod "),
                "cli/src/{file}: declares modules only, found {line:?}"
            );
        }
    }
    assert_acyclic("sni-guard-cli", &map.cli);
}

/// The rows form a stack: following "may import" never comes back to where it started.
fn assert_acyclic(crate_name: &str, rows: &BTreeMap<String, BTreeSet<String>>) {
    fn visit<'a>(
        module: &'a str,
        rows: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Result<(), String> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            return Err(format!("{} -> {module}", path[at..].join(" -> ")));
        }
        if done.contains(module) {
            return Ok(());
        }
        path.push(module);
        for next in rows.get(module).into_iter().flatten() {
            visit(next, rows, path, done)?;
        }
        path.pop();
        done.insert(module);
        Ok(())
    }
    let mut done = BTreeSet::new();
    for module in rows.keys() {
        if let Err(cycle) = visit(module, rows, &mut Vec::new(), &mut done) {
            panic!("ARCHITECTURE.md, {crate_name}: the rows make a cycle: {cycle}");
        }
    }
}

#[test]
fn the_logic_imports_only_what_its_row_allows() {
    let map = architecture();
    let files = modules("src");
    let listed: BTreeSet<&String> = map.logic.keys().collect();
    let present: BTreeSet<&String> = files.keys().filter(|m| *m != "lib").collect();
    assert_eq!(listed, present, "ARCHITECTURE.md's logic table and the files in src/ differ");
    for (module, code) in &files {
        let mut imports = named(code, "crate::");
        imports.extend(named(code, "super::"));
        imports.extend(named(code, "sni_guard::"));
        let allowed = map.logic.get(module).cloned().unwrap_or_default();
        let extra: Vec<&String> = imports.difference(&allowed).collect();
        assert!(extra.is_empty(), "src/{module}.rs imports {extra:?}; ARCHITECTURE.md allows {allowed:?}");
    }
    assert_acyclic("sni-guard", &map.logic);
}

#[test]
fn the_glue_imports_only_what_its_row_allows() {
    let map = architecture();
    let files = modules("wasm/src");
    let listed: BTreeSet<&String> = map.glue.keys().collect();
    let present: BTreeSet<&String> = files.keys().filter(|m| *m != "lib").collect();
    assert_eq!(listed, present, "ARCHITECTURE.md's glue table and the files in wasm/src/ differ");
    for (module, code) in &files {
        let mut imports = named(code, "crate::");
        imports.extend(named(code, "super::"));
        imports.extend(named(code, "sni_guard::").into_iter().map(|m| format!("sni_guard::{m}")));
        let allowed = map.glue.get(module).cloned().unwrap_or_default();
        let extra: Vec<&String> = imports.difference(&allowed).collect();
        assert!(extra.is_empty(), "wasm/src/{module}.rs imports {extra:?}; ARCHITECTURE.md allows {allowed:?}");
        for logic in allowed.iter().filter_map(|m| m.strip_prefix("sni_guard::")) {
            assert!(
                map.logic.contains_key(logic),
                "ARCHITECTURE.md: `{module}` may import sni_guard::{logic}, no such module"
            );
        }
    }
    assert_acyclic("sni-guard-wasm", &map.glue);
}

/// The logic knows nothing of proxy-wasm: no glue, no ABI, no host imports or exports, no
/// code only for WebAssembly; and its crate depends on none of them.
#[test]
fn the_logic_names_no_part_of_the_glue_or_the_abi() {
    for (module, code) in modules("src") {
        for word in ["sni_guard_wasm", "proxy_wasm", "crate::wasm", "extern \"C\"", "no_mangle", "wasm32", "proxy_on_"]
        {
            assert!(!code.contains(word), "src/{module}.rs names `{word}` outside comments and tests");
        }
    }
    let manifest = read("Cargo.toml");
    let dependencies = section(&manifest, "[dependencies]");
    for name in ["proxy-wasm", "sni-guard-wasm", "wasm-test-harness", "wasmtime"] {
        assert!(!dependencies.contains(name), "Cargo.toml: the logic depends on {name}");
    }
    // The module takes the logic without its features: no serde derives, no test doubles.
    let glue_manifest = read("wasm/Cargo.toml");
    let glue = section(&glue_manifest, "[dependencies]");
    let logic = glue.lines().find(|l| l.starts_with("sni-guard ")).expect("wasm/Cargo.toml: no sni-guard dependency");
    assert!(logic.contains("default-features = false") && !logic.contains("features = ["), "wasm/Cargo.toml: {logic}");
    let features = section(&manifest, "[features]");
    assert!(!features.lines().any(|l| l.starts_with("default")), "Cargo.toml: the logic has default features");
}

/// The lines of a TOML section, up to the next `[`.
fn section<'a>(toml: &'a str, header: &str) -> &'a str {
    let start =
        toml.find(&format!("\n{header}\n")).map(|at| at + header.len() + 2).unwrap_or_else(|| panic!("no {header}"));
    let rest = &toml[start..];
    &rest[..rest.find("\n[").map_or(rest.len(), |at| at + 1)]
}

#[test]
fn the_reader_of_imports_reads_them() {
    let code = "use crate::{hostcalls, logger::{self, init}};\nuse crate::abi::status::OK;\nlet x = \
                crate::log_limit::WINDOW_NS; my_crate::x; sni_guard::cel::parse_names(v)";
    let found: Vec<String> = named(code, "crate::").into_iter().collect();
    assert_eq!(found, ["abi", "hostcalls", "log_limit", "logger"]);
    assert_eq!(named(code, "sni_guard::").into_iter().collect::<Vec<_>>(), ["cel"]);
    let folders = BTreeSet::from(["cluster".to_string(), "tls".to_string()]);
    let cli = "use crate::text::{wrap, KEEP};\nuse crate::cluster::{model::Server, services};\nuse \
               super::secrets::Secret; crate::tls::certificate::parse(x)";
    let found: Vec<String> = cli_named(cli, Some("tls"), &folders).into_iter().collect();
    assert_eq!(found, ["cluster::model", "cluster::services", "text", "tls::certificate", "tls::secrets"]);
}
