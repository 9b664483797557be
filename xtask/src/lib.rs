//! The programs' translations, as a workspace task: `cargo run -p xtask -- po` extracts
//! every message into `po/messages.pot` and merges it into `po/ko.po`; `cargo run -p
//! xtask -- check` (and this crate's test, which `cargo test --workspace` runs) refuses
//! a catalog that leaves a sentence of the sources untranslated, has a fuzzy or empty
//! entry, or changes a sentence's `{placeholders}`. The workflow is in `po/README.md`.
//!
//! Two kinds of messages: the sentences of `tr!` and `say!`, found by reading every
//! crate's `src/**/*.rs` as Rust ([`extract`]); and the texts of each program's
//! `--help`, which only clap knows once it has built the command, so each program's
//! own test (`common::i18n::check::assert_help_translated`) checks them and, for the
//! extractor, writes them down ([`help_texts`]).
//!
//! Not a library for the demos: nothing here runs in a program.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::i18n::check::{HELP_TEXTS_ENV, HelpText, decode};

pub mod catalog;
pub mod extract;
pub mod pot;

/// The workspace: its root folder and its member crates.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The folder with the workspace's Cargo.toml.
    pub root: PathBuf,
    /// The member crates' folders, relative to the root.
    pub members: Vec<String>,
}

impl Workspace {
    /// The workspace this crate belongs to.
    pub fn find() -> Result<Workspace, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("xtask's folder has no parent")?
            .to_path_buf();
        let manifest = root.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("read {}: {e}", manifest.display()))?;
        let members = members(&text)
            .ok_or_else(|| format!("{}: no `members = [...]` list", manifest.display()))?;
        Ok(Workspace { root, members })
    }

    /// `po/ko.po`, the Korean catalog.
    pub fn ko_po(&self) -> PathBuf {
        self.root.join("po").join("ko.po")
    }

    /// `po/messages.pot`, the template the extractor writes.
    pub fn pot(&self) -> PathBuf {
        self.root.join("po").join("messages.pot")
    }

    /// The programs that check their `--help` (their `src/main.rs` calls
    /// `assert_help_translated`), by package name, which is the program's name: a
    /// member's folder may be named otherwise (`watch/` holds `ipc-watch`).
    pub fn programs(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|member| {
                std::fs::read_to_string(self.root.join(member).join("src").join("main.rs"))
                    .is_ok_and(|main| main.contains("assert_help_translated"))
            })
            .map(|member| {
                std::fs::read_to_string(self.root.join(member).join("Cargo.toml"))
                    .ok()
                    .and_then(|manifest| package_name(&manifest))
                    .unwrap_or_else(|| member.clone())
            })
            .collect()
    }
}

/// The `name = "..."` of a member's `[package]` section.
fn package_name(manifest: &str) -> Option<String> {
    let package = &manifest[manifest.find("[package]")?..];
    let line = package
        .lines()
        .find(|line| line.trim_start().starts_with("name"))?;
    Some(line.split_once('=')?.1.trim().trim_matches('"').to_owned())
}

/// The quoted names of the workspace's `members = [...]` (the workspace is flat: one
/// folder a crate, no globs).
fn members(cargo_toml: &str) -> Option<Vec<String>> {
    let start = cargo_toml.find("members")?;
    let rest = &cargo_toml[start..];
    let list = &rest[rest.find('[')? + 1..rest.find(']')?];
    Some(
        list.split(',')
            .map(|item| item.trim().trim_matches('"').to_owned())
            .filter(|item| !item.is_empty())
            .collect(),
    )
}

/// Everything wrong with `po/ko.po` against the sentences of the sources (see
/// [`catalog::problems`]); an empty list means all is well.
pub fn check(ws: &Workspace) -> Result<Vec<String>, String> {
    let found = extract::sources(&ws.root, &ws.members)?;
    let entries = catalog::read(&ws.ko_po())?;
    Ok(catalog::problems("po/ko.po", &entries, &found))
}

/// The texts of every program's `--help`: runs each program's
/// `help_is_translated_to_korean` test with [`HELP_TEXTS_ENV`] set, and reads what they
/// wrote. The tests may fail (the new texts are not translated yet); that is expected.
pub fn help_texts(ws: &Workspace) -> Result<Vec<HelpText>, String> {
    let dir = ws.root.join("target").join("i18n-help-texts");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("remove {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "test",
            "--workspace",
            "--bins",
            "--no-fail-fast",
            "--quiet",
            "--",
        ])
        .arg("help_is_translated_to_korean")
        .env(HELP_TEXTS_ENV, &dir)
        .current_dir(&ws.root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run cargo test: {e}"))?;
    let mut texts = Vec::new();
    let mut missing = Vec::new();
    for program in ws.programs() {
        let path = dir.join(format!("{program}.txt"));
        match std::fs::read_to_string(&path) {
            Ok(encoded) => texts.extend(decode(&encoded)),
            Err(_) => missing.push(program),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !missing.is_empty() {
        return Err(format!(
            "the --help test of {} wrote no texts (does it build?); cargo test said:\n{}",
            missing.join(", "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(texts)
}

/// Extracts every message into `po/messages.pot` and merges it into `po/ko.po` with
/// `msgmerge` (new messages arrive untranslated, changed ones fuzzy). Returns what
/// `msgfmt --statistics` says of the result.
pub fn po(ws: &Workspace) -> Result<String, String> {
    let found = extract::sources(&ws.root, &ws.members)?;
    for bad in found.iter().filter(|f| f.problem.is_some()) {
        eprintln!(
            "warning: {}: {:?}: {} (left out)",
            bad.place,
            bad.msgid,
            bad.problem.as_deref().unwrap_or_default()
        );
    }
    let help = help_texts(ws)?;
    let pot = ws.pot();
    std::fs::write(&pot, pot::render(&found, &help))
        .map_err(|e| format!("write {}: {e}", pot.display()))?;
    let ko = ws.ko_po();
    if !ko.exists() {
        return Err(format!(
            "{} is missing; start it with `msginit --locale=ko --no-translator --input={} \
             --output-file={}`",
            ko.display(),
            pot.display(),
            ko.display()
        ));
    }
    tool(
        Command::new("msgmerge")
            .args(["--quiet", "--update", "--backup=none", "--previous"])
            .arg(&ko)
            .arg(&pot),
    )?;
    tool(
        Command::new("msgfmt")
            .args(["--check", "--statistics", "--output-file=/dev/null"])
            .arg(&ko),
    )
}

/// Runs a gettext tool; its messages (msgfmt prints its statistics on standard error),
/// or an error that says how to install it.
fn tool(command: &mut Command) -> Result<String, String> {
    let name = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|e| {
        format!("cannot run {name} ({e}); install GNU gettext (apt-get install gettext)")
    })?;
    let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if output.status.success() {
        Ok(said)
    } else {
        Err(format!("{name} failed: {said}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_read_from_the_workspace_list() {
        let toml = "[workspace]\nresolver = \"3\"\nmembers = [\"a\", \"b-demo\",\n \"xtask\"]\n";
        assert_eq!(members(toml).unwrap(), ["a", "b-demo", "xtask"]);
    }
}
