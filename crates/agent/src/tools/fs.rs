//! File tools: read, write, edit, glob, grep (grep and glob on ripgrep's crates).

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::paths::Roots;
use super::{arg_str, arg_u64, cap_output};

/// Lines returned by `read` when no limit is given.
const DEFAULT_READ_LINES: usize = 2000;
/// Largest file `read` loads.
const MAX_READ_BYTES: u64 = 10 * 1024 * 1024;
/// Results `glob` and `grep` list at most.
const MAX_HITS: usize = 500;

/// `read {path, offset?, limit?}`: numbered lines.
pub fn read(roots: &Roots, input: &Value) -> Result<String, String> {
    let path = roots.resolve(arg_str(input, "path")?, false)?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{}: is a directory (use glob)", path.display()));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(format!(
            "{}: {} bytes is too large to read",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
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

/// `write {path, content}`: creates parents, replaces the file.
pub fn write(roots: &Roots, input: &Value) -> Result<String, String> {
    let path = roots.resolve(arg_str(input, "path")?, true)?;
    let content = arg_str(input, "content")?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "wrote {} bytes to {}",
        content.len(),
        path.display()
    ))
}

/// `edit {path, old_string, new_string, replace_all?}`: exact replacement, unique unless replace_all.
pub fn edit(roots: &Roots, input: &Value) -> Result<String, String> {
    let path = roots.resolve(arg_str(input, "path")?, true)?;
    let old = arg_str(input, "old_string")?;
    let new = arg_str(input, "new_string")?;
    let all = input
        .get("replace_all")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if old.is_empty() {
        return Err("old_string is empty".into());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = text.matches(old).count();
    let updated = match (n, all) {
        (0, _) => return Err(format!("old_string not found in {}", path.display())),
        (1, _) | (_, true) => text.replace(old, new),
        (n, false) => {
            return Err(format!(
                "old_string occurs {n} times in {}; give more context or set replace_all",
                path.display()
            ))
        }
    };
    std::fs::write(&path, updated).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("replaced {n} occurrence(s) in {}", path.display()))
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
    let base = roots.resolve(
        input.get("path").and_then(Value::as_str).unwrap_or("."),
        false,
    )?;
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
    let base = roots.resolve(
        input.get("path").and_then(Value::as_str).unwrap_or("."),
        false,
    )?;
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
    let files: Vec<_> = if base.is_file() {
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
        let _ = searcher.search_path(
            &matcher,
            &file,
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
