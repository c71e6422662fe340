//! File tools: read, write, edit, glob, grep (grep and glob on ripgrep's crates).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use nanoclaw_protocol::beneath::{Error, FileType};

use super::paths::{Located, Roots};
use super::{arg_str, arg_u64, cap_output, Set, Tool, ToolFuture, Toolbox};

/// Lines returned by `read` when no limit is given.
const DEFAULT_READ_LINES: usize = 2000;
/// Largest file `read` loads.
const MAX_READ_BYTES: u64 = 10 * 1024 * 1024;
/// Results `glob` and `grep` list at most.
const MAX_HITS: usize = 500;

/// The `read` tool.
pub struct Read;

impl Tool for Read {
    fn name(&self) -> &'static str {
        "read"
    }
    fn description(&self) -> &'static str {
        "Read a text file (numbered lines). Relative paths start in the agent folder."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "path": {"type": "string"},
            "offset": {"type": "integer", "description": "first line, 1-based"},
            "limit": {"type": "integer"}},
            "required": ["path"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { read(&tb.roots, input) })
    }
}

/// The `write` tool.
pub struct Write;

impl Tool for Write {
    fn name(&self) -> &'static str {
        "write"
    }
    fn description(&self) -> &'static str {
        "Create or replace a file."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { write(&tb.roots, input) })
    }
}

/// The `edit` tool.
pub struct Edit;

impl Tool for Edit {
    fn name(&self) -> &'static str {
        "edit"
    }
    fn description(&self) -> &'static str {
        "Replace an exact string in a file (must be unique unless replace_all)."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "path": {"type": "string"}, "old_string": {"type": "string"},
            "new_string": {"type": "string"}, "replace_all": {"type": "boolean"}},
            "required": ["path", "old_string", "new_string"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { edit(&tb.roots, input) })
    }
}

/// The `glob` tool.
pub struct Glob;

impl Tool for Glob {
    fn name(&self) -> &'static str {
        "glob"
    }
    fn description(&self) -> &'static str {
        "List files matching a glob pattern (e.g. **/*.md)."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "pattern": {"type": "string"}, "path": {"type": "string"}},
            "required": ["pattern"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { glob(&tb.roots, input) })
    }
}

/// The `grep` tool.
pub struct Grep;

impl Tool for Grep {
    fn name(&self) -> &'static str {
        "grep"
    }
    fn description(&self) -> &'static str {
        "Search file contents with a regular expression; file:line:text results."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "pattern": {"type": "string"}, "path": {"type": "string"},
            "glob": {"type": "string", "description": "only files matching this glob"}},
            "required": ["pattern"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { grep(&tb.roots, input) })
    }
}

/// `read {path, offset?, limit?}`: numbered lines.
pub fn read(roots: &Roots, input: &Value) -> Result<String, String> {
    let path = arg_str(input, "path")?;
    let loc = roots.locate(path, false)?;
    if loc.rel.as_os_str().is_empty()
        || loc.dir()?.kind(&loc.rel).map_err(|e| loc.explain(e))? == Some(FileType::Directory)
    {
        return Err(format!(
            "{}: is a directory (use glob)",
            loc.shown.display()
        ));
    }
    let (file, loc) = roots.open_file(path, MAX_READ_BYTES)?;
    let bytes = file
        .read_capped(&loc.rel, MAX_READ_BYTES)
        .map_err(|e| loc.explain(e))?;
    let text = String::from_utf8_lossy(&bytes);
    let offset = arg_u64(input, "offset").unwrap_or(1).max(1) as usize;
    let limit = arg_u64(input, "limit").map_or(DEFAULT_READ_LINES, |l| l as usize);
    let mut out = String::new();
    let mut shown = 0;
    for (i, line) in text.lines().enumerate().skip(offset - 1).take(limit) {
        let _ = writeln!(out, "{:>6}\t{line}", i + 1);
        shown += 1;
    }
    let total = text.lines().count();
    if offset - 1 + shown < total {
        let _ = write!(
            out,
            "… {} more lines (use offset/limit)",
            total - (offset - 1 + shown)
        );
    }
    if total == 0 {
        out.push_str("(empty file)");
    }
    Ok(cap_output(out))
}

/// `write {path, content}`: creates parents, replaces the file. Nothing is written through a
/// link, and a dangling link is not a way to create its target.
pub fn write(roots: &Roots, input: &Value) -> Result<String, String> {
    let loc = roots.locate(arg_str(input, "path")?, true)?;
    let content = arg_str(input, "content")?;
    replace(&loc, content.as_bytes())?;
    Ok(format!(
        "wrote {} bytes to {}",
        content.len(),
        loc.shown.display()
    ))
}

fn replace(loc: &Located, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let (Some(parent), Some(name)) = (loc.rel.parent(), loc.rel.file_name()) else {
        return Err(format!("{}: is a directory", loc.shown.display()));
    };
    let dir = loc.dir()?;
    let at = dir
        .create_dir_all(parent, 0o755)
        .map_err(|e| loc.explain(e))?;
    at.write_file(name, 0o644)
        .and_then(|mut f| {
            f.write_all(bytes).map_err(|e| Error::Io {
                path: loc.rel.clone(),
                source: e,
            })
        })
        .map_err(|e| loc.explain(e))
}

/// `edit {path, old_string, new_string, replace_all?}`: exact replacement, unique unless replace_all.
pub fn edit(roots: &Roots, input: &Value) -> Result<String, String> {
    let path = arg_str(input, "path")?;
    let loc = roots.locate(path, true)?;
    let old = arg_str(input, "old_string")?;
    let new = arg_str(input, "new_string")?;
    let all = input
        .get("replace_all")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if old.is_empty() {
        return Err("old_string is empty".into());
    }
    let (file, _) = roots.open_file(path, MAX_READ_BYTES)?;
    let bytes = file
        .read_capped(&loc.rel, MAX_READ_BYTES)
        .map_err(|e| loc.explain(e))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", loc.shown.display()))?;
    let n = text.matches(old).count();
    let updated = match (n, all) {
        (0, _) => return Err(format!("old_string not found in {}", loc.shown.display())),
        (1, _) | (_, true) => text.replace(old, new),
        (n, false) => {
            return Err(format!(
                "old_string occurs {n} times in {}; give more context or set replace_all",
                loc.shown.display()
            ))
        }
    };
    replace(&loc, updated.as_bytes())?;
    Ok(format!(
        "replaced {n} occurrence(s) in {}",
        loc.shown.display()
    ))
}

fn walk(root: &Path) -> ignore::Walk {
    ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .require_git(false)
        .build()
}

/// `glob {pattern, path?}`: matching files under path, relative names.
pub fn glob(roots: &Roots, input: &Value) -> Result<String, String> {
    let pattern = arg_str(input, "pattern")?;
    let loc = roots.locate(
        input.get("path").and_then(Value::as_str).unwrap_or("."),
        false,
    )?;
    // The base itself reached through no link (the walk below never follows one).
    loc.dir()?.open_dir(&loc.rel).map_err(|e| loc.explain(e))?;
    let base = loc.shown.clone();
    let matcher = globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map_err(|e| format!("bad pattern: {e}"))?
        .compile_matcher();
    let mut hits = Vec::new();
    for entry in walk(&base).flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = entry.path().strip_prefix(&base).unwrap_or(entry.path());
        if matcher.is_match(rel) {
            hits.push(rel.display().to_string());
            if hits.len() >= MAX_HITS {
                break;
            }
        }
    }
    hits.sort();
    if hits.is_empty() {
        return Ok("no files match".into());
    }
    Ok(hits.join("\n"))
}

/// `grep {pattern, path?, glob?}`: `file:line:text` for each match.
pub fn grep(roots: &Roots, input: &Value) -> Result<String, String> {
    use grep_searcher::sinks::UTF8;
    let pattern = arg_str(input, "pattern")?;
    let loc = roots.locate(
        input.get("path").and_then(Value::as_str).unwrap_or("."),
        false,
    )?;
    let root = loc.dir()?;
    let base = loc.shown.clone();
    let matcher =
        grep_regex::RegexMatcher::new(pattern).map_err(|e| format!("bad pattern: {e}"))?;
    let filter = match input.get("glob").and_then(Value::as_str) {
        Some(g) => Some(
            globset::Glob::new(g)
                .map_err(|e| format!("bad glob: {e}"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let mut searcher = grep_searcher::SearcherBuilder::new()
        .binary_detection(grep_searcher::BinaryDetection::quit(0))
        .line_number(true)
        .build();
    let mut out = Vec::new();
    let base_kind = if loc.rel.as_os_str().is_empty() {
        Some(FileType::Directory) // the root itself
    } else {
        root.kind(&loc.rel).map_err(|e| loc.explain(e))?
    };
    if base_kind == Some(FileType::Symlink) {
        return Err(loc.explain(Error::Link {
            path: loc.rel.clone(),
        }));
    }
    let files: Vec<_> = if base_kind == Some(FileType::RegularFile) {
        vec![base.clone()]
    } else {
        walk(&base)
            .flatten()
            .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
            .map(|e| e.into_path())
            .collect()
    };
    for file in files {
        let rel = file.strip_prefix(&base).unwrap_or(&file).to_path_buf();
        if let Some(f) = &filter {
            if !f.is_match(&rel) && !rel.file_name().is_some_and(|n| f.is_match(n)) {
                continue;
            }
        }
        let shown = if rel.as_os_str().is_empty() {
            file.clone()
        } else {
            rel
        };
        // Opened beneath the root like every other read: a name swapped for a link (or a
        // FIFO) since the walk listed it is skipped, never followed or waited on.
        let Ok(under) = file.strip_prefix(&loc.shown) else {
            continue;
        };
        let Ok(opened) = root.open_file(loc.rel.join(under), u64::MAX) else {
            continue;
        };
        let _ = searcher.search_file(
            &matcher,
            &opened.file,
            UTF8(|line, text| {
                out.push(format!("{}:{line}:{}", shown.display(), text.trim_end()));
                Ok(out.len() < MAX_HITS)
            }),
        );
        if out.len() >= MAX_HITS {
            break;
        }
    }
    if out.is_empty() {
        return Ok("no matches".into());
    }
    Ok(cap_output(out.join("\n")))
}
