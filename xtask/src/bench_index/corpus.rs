//! The benchmark corpus: real sources fetched from the package registries at bench time, never
//! committed, plus one generated 5,000-line Rust file for the edit measurement.
//!
//! Each part is pinned where the registry allows it (crates by `=` requirement, PyPI and npm by
//! exact version); Debian packages come from the configured suite, and the fetched versions are
//! listed in the report. Files larger than baton's 1 MiB limit are removed from the corpus, so
//! that both tools see exactly the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

/// baton's default `index.max_file_bytes`: bigger files are skipped by baton, so they are
/// removed from the corpus rather than measured by ctags alone.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The crates whose `cargo vendor` (with their dependencies, minus the `windows*` platform
/// binding crates, which are generated and would dominate the corpus) forms the Rust part.
const CARGO_MANIFEST: &str = r#"[package]
name = "baton-bench-corpus"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[lib]
path = "lib.rs"

[dependencies]
serde = { version = "=1.0.219", features = ["derive"] }
serde_json = "=1.0.140"
regex = "=1.11.1"
clap = { version = "=4.5.40", features = ["derive"] }
syn = { version = "=2.0.104", features = ["full"] }
"#;

/// Python: the `django/` package of Django's sdist (its test suite would make the corpus mostly
/// Python). C: Brotli's sdist, which bundles the C library.
const PYPI_SDISTS: &[(&str, &str, Option<&str>)] = &[
    ("django", "5.1.4", Some("Django-5.1.4/django")),
    ("brotli", "1.1.0", None),
];

/// TypeScript and JavaScript: rxjs ships its TypeScript sources beside the compiled JavaScript.
const NPM_PACKAGES: &[&str] = &["rxjs@7.8.1"];

/// Go, Ruby and Lua sources as Debian packages them (`-dev` Go packages hold sources).
const DEBIAN_PACKAGES: &[&str] = &[
    "golang-github-spf13-cobra-dev",
    "ruby-rack",
    "rake",
    "lua-penlight",
];

/// The generated file the edit measurement opens, relative to the corpus root.
pub const EDIT_TARGET: &str = "generated/edit_target.rs";

/// Lines in the generated file.
pub const EDIT_TARGET_LINES: usize = 5_000;

/// Lines per generated function (the file is functions only, plus a header).
pub const LINES_PER_FUNCTION: usize = 10;

/// Where the corpus is and what it holds.
pub struct Corpus {
    pub root: PathBuf,
    /// What was fetched, one line per source, for the report.
    pub sources: Vec<String>,
    /// Files in baton's languages, sorted: exactly what ctags is given.
    pub files: Vec<PathBuf>,
    /// Per language: files and bytes.
    pub per_language: BTreeMap<&'static str, (usize, u64)>,
    /// The 5,000-line file the edit measurement opens.
    pub edit_target: PathBuf,
}

impl Corpus {
    pub fn total_bytes(&self) -> u64 {
        self.per_language.values().map(|(_, bytes)| bytes).sum()
    }
}

/// Fetches the corpus into `directory` unless a previous run completed it (or the directory
/// already holds files the user chose), then takes stock. A directory is only ever deleted when
/// it is an incomplete fetch of ours, recognised by the missing sources manifest beside it and
/// the `rust` subdirectory the first step creates.
pub fn prepare(directory: &Path, scratch: &Path) -> anyhow::Result<Corpus> {
    let manifest = directory.with_file_name(format!(
        "{}.sources.txt",
        directory
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("corpus")
    ));
    let user_supplied = !manifest.exists()
        && directory.exists()
        && !directory.join("rust").exists()
        && std::fs::read_dir(directory)?.next().is_some();
    let sources = if user_supplied {
        vec![format!(
            "a directory given with --corpus: {}",
            directory.display()
        )]
    } else {
        if !manifest.exists() {
            if directory.exists() {
                std::fs::remove_dir_all(directory)
                    .with_context(|| format!("removing the incomplete {}", directory.display()))?;
            }
            std::fs::create_dir_all(directory)?;
            let sources = fetch(directory)?;
            remove_oversized(directory)?;
            write_edit_target(&directory.join(EDIT_TARGET))?;
            std::fs::write(&manifest, sources.join("\n") + "\n")?;
        }
        std::fs::read_to_string(&manifest)?
            .lines()
            .map(String::from)
            .collect()
    };
    // A corpus of the user's own gets the generated file beside it rather than inside it.
    let mut edit_target = directory.join(EDIT_TARGET);
    if !edit_target.exists() {
        edit_target = scratch.join("edit_target.rs");
        write_edit_target(&edit_target)?;
    }
    let (files, per_language) = inventory(directory)?;
    ensure!(
        !files.is_empty(),
        "{} holds no source files",
        directory.display()
    );
    Ok(Corpus {
        root: directory.to_path_buf(),
        sources,
        files,
        per_language,
        edit_target,
    })
}

fn fetch(directory: &Path) -> anyhow::Result<Vec<String>> {
    let downloads = directory.with_file_name("downloads");
    if downloads.exists() {
        std::fs::remove_dir_all(&downloads)?;
    }
    std::fs::create_dir_all(&downloads)?;
    let mut sources = Vec::new();

    // Rust: cargo vendor of a temporary manifest.
    let crate_dir = downloads.join("cargo");
    std::fs::create_dir_all(&crate_dir)?;
    std::fs::write(crate_dir.join("Cargo.toml"), CARGO_MANIFEST)?;
    std::fs::write(crate_dir.join("lib.rs"), "")?;
    let vendor = directory.join("rust");
    run(Command::new(cargo())
        .args(["vendor", "--versioned-dirs", "--quiet"])
        .arg(&vendor)
        .current_dir(&crate_dir)
        .stdout(std::process::Stdio::null()))?;
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(&vendor)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("windows") || name.starts_with("winapi") {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            crates.push(name);
        }
    }
    crates.sort();
    sources.push(format!(
        "crates.io (cargo vendor of serde, serde_json, regex, clap, syn and their dependencies, \
         windows* removed): {}",
        crates.join(", ")
    ));

    // Python sdists.
    for (package, version, subdirectory) in PYPI_SDISTS {
        let target = downloads.join(package);
        std::fs::create_dir_all(&target)?;
        run(Command::new("pip")
            .args(["download", "--quiet", "--no-deps", "--no-binary", ":all:"])
            .arg(format!("{package}=={version}"))
            .arg("-d")
            .arg(&target))?;
        let archive = single_file(&target)?;
        let unpacked = downloads.join(format!("{package}-unpacked"));
        std::fs::create_dir_all(&unpacked)?;
        run(Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked))?;
        let source = match subdirectory {
            Some(subdirectory) => unpacked.join(subdirectory),
            None => single_entry(&unpacked)?,
        };
        std::fs::rename(&source, directory.join(format!("pypi-{package}-{version}")))?;
        sources.push(format!(
            "PyPI sdist {package}=={version}{}",
            subdirectory.map_or(String::new(), |path| format!(" ({path} only)"))
        ));
    }

    // npm packages.
    for package in NPM_PACKAGES {
        let target = downloads.join("npm");
        std::fs::create_dir_all(&target)?;
        run(Command::new("npm")
            .args(["pack", "--silent", package])
            .current_dir(&target)
            .stdout(std::process::Stdio::null()))?;
        let archive = single_file(&target)?;
        let unpacked = directory.join(format!("npm-{}", package.replace(['@', '/'], "-")));
        std::fs::create_dir_all(&unpacked)?;
        run(Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked))?;
        std::fs::remove_file(archive)?;
        sources.push(format!("npm {package}"));
    }

    // Debian packages: `apt-get download` needs no root and does not install anything.
    let debs = downloads.join("debian");
    std::fs::create_dir_all(&debs)?;
    run(Command::new("apt-get")
        .args(["download", "-q"])
        .args(DEBIAN_PACKAGES)
        .current_dir(&debs)
        .stdout(std::process::Stdio::null()))?;
    let mut fetched: Vec<PathBuf> = std::fs::read_dir(&debs)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    fetched.sort();
    for deb in fetched {
        let stem = deb
            .file_stem()
            .and_then(|stem| stem.to_str())
            .context("a .deb without a name")?
            .to_string();
        let unpacked = directory.join(format!("debian-{stem}"));
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
        sources.push(format!("Debian {stem}"));
    }

    std::fs::remove_dir_all(&downloads)?;
    Ok(sources)
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let description = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting {description}"))?;
    if !status.success() {
        bail!("{description} failed with {status}");
    }
    Ok(())
}

fn single_file(directory: &Path) -> anyhow::Result<PathBuf> {
    let entry = single_entry(directory)?;
    ensure!(entry.is_file(), "{} is not a file", entry.display());
    Ok(entry)
}

fn single_entry(directory: &Path) -> anyhow::Result<PathBuf> {
    let entries: Vec<PathBuf> = std::fs::read_dir(directory)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    match entries.as_slice() {
        [only] => Ok(only.clone()),
        _ => bail!(
            "expected exactly one entry in {}, found {}",
            directory.display(),
            entries.len()
        ),
    }
}

/// Deletes source files over baton's size limit (amalgamations and generated tables).
fn remove_oversized(directory: &Path) -> anyhow::Result<()> {
    for path in walk(directory)? {
        if language_of(&path).is_some() && std::fs::metadata(&path)?.len() > MAX_FILE_BYTES {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// A Rust file of exactly [`EDIT_TARGET_LINES`] lines: a header, then functions of
/// [`LINES_PER_FUNCTION`] lines each, named `function_NNNN`.
pub fn edit_target_text() -> String {
    let mut text = String::from("//! Generated for the baton index benchmark.\n\n");
    let header_lines = 2;
    let functions = (EDIT_TARGET_LINES - header_lines) / LINES_PER_FUNCTION;
    for number in 0..functions {
        text.push_str(&format!(
            "pub fn function_{number:04}(input: u64) -> u64 {{\n    \
             let doubled = input * 2;\n    \
             let shifted = doubled << 1;\n    \
             if shifted > {number} {{\n        \
             return shifted - {number};\n    \
             }}\n    \
             let total = shifted + doubled;\n    \
             total\n\
             }}\n\n"
        ));
    }
    // Pad to the exact line count with comments.
    let mut lines = text.lines().count();
    while lines < EDIT_TARGET_LINES {
        text.push_str("// padding\n");
        lines += 1;
    }
    text
}

/// The 0-based line of `fn function_NNNN`'s signature.
pub fn edit_target_function_line(number: usize) -> u32 {
    (2 + number * LINES_PER_FUNCTION) as u32
}

fn write_edit_target(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().context("a path with a parent")?)?;
    std::fs::write(path, edit_target_text())?;
    Ok(())
}

/// baton's language of a path by extension, as `syntax::Language::from_path` decides it
/// (duplicated here so the xtask does not build the tree-sitter grammars).
pub fn language_of(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "tsx",
        "js" | "jsx" | "mjs" | "cjs" => "javascript",
        "go" => "go",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" => "cpp",
        "java" => "java",
        "rb" => "ruby",
        "lua" => "lua",
        "sh" | "bash" => "bash",
        _ => return None,
    })
}

/// Every regular file under `directory`, skipping hidden entries as baton's walker does.
fn walk(directory: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))?
        {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

type Inventory = (Vec<PathBuf>, BTreeMap<&'static str, (usize, u64)>);

fn inventory(directory: &Path) -> anyhow::Result<Inventory> {
    let mut files = Vec::new();
    let mut per_language: BTreeMap<&'static str, (usize, u64)> = BTreeMap::new();
    for path in walk(directory)? {
        let Some(language) = language_of(&path) else {
            continue;
        };
        let size = std::fs::metadata(&path)?.len();
        let entry = per_language.entry(language).or_default();
        entry.0 += 1;
        entry.1 += size;
        files.push(path);
    }
    Ok((files, per_language))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edit_target_has_the_promised_shape() {
        let text = edit_target_text();
        assert_eq!(text.lines().count(), EDIT_TARGET_LINES);
        let line = text
            .lines()
            .nth(edit_target_function_line(123) as usize)
            .expect("the line exists");
        assert_eq!(line, "pub fn function_0123(input: u64) -> u64 {");
    }

    #[test]
    fn languages_follow_baton_extensions() {
        assert_eq!(language_of(Path::new("a/b.RS")), Some("rust"));
        assert_eq!(language_of(Path::new("x.h")), Some("c"));
        assert_eq!(language_of(Path::new("x.mjs")), Some("javascript"));
        assert_eq!(language_of(Path::new("README.md")), None);
        assert_eq!(language_of(Path::new("Makefile")), None);
    }
}
