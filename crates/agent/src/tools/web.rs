//! `web_fetch {url}`: a page as text, size-capped.
//!
//! HTML is reduced to text by a small converter here rather than a full HTML engine: the model
//! reads text fine, and the runner stays small (its idle RSS target is 15 MB).

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{json, Value};

use super::{arg_str, cap_output, Set, Tool, ToolFuture, Toolbox};

/// Largest body read.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// The `web_fetch` tool.
pub struct WebFetch;

impl Tool for WebFetch {
    fn name(&self) -> &'static str {
        "web_fetch"
    }
    fn description(&self) -> &'static str {
        "Fetch a web page (http/https) as text."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(fetch(&tb.http, input))
    }
}

/// Fetches the URL (http/https only).
pub async fn fetch(http: &reqwest::Client, input: &Value) -> Result<String, String> {
    let url = arg_str(input, "url")?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad url: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs can be fetched, not {}",
            parsed.scheme()
        ));
    }
    let mut resp = http
        .get(parsed)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("fetch failed: {e}"))?;
    let status = resp.status();
    let html = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("html"));
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("read failed: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            body.truncate(MAX_BODY);
            truncated = true;
            break;
        }
    }
    let raw = String::from_utf8_lossy(&body);
    let mut text = if html {
        html_to_text(&raw)
    } else {
        raw.into_owned()
    };
    if truncated {
        text.push_str("\n[… body truncated at 2 MB]");
    }
    if !status.is_success() {
        return Err(cap_output(format!("HTTP {status}\n{text}")));
    }
    Ok(cap_output(text))
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

/// Strips scripts, styles and tags; block elements become line breaks; entities decoded.
pub fn html_to_text(html: &str) -> String {
    static DROP: OnceLock<Regex> = OnceLock::new();
    static BLOCK: OnceLock<Regex> = OnceLock::new();
    static TAG: OnceLock<Regex> = OnceLock::new();
    static BLANK: OnceLock<Regex> = OnceLock::new();
    let s = re(
        &DROP,
        r"(?is)<(script|style|noscript|head)\b.*?</(script|style|noscript|head)\s*>|<!--.*?-->",
    )
    .replace_all(html, "");
    let s = re(
        &BLOCK,
        r"(?i)<(br|/p|/div|/h[1-6]|/li|/tr|/title|hr)\b[^>]*>|<li\b[^>]*>",
    )
    .replace_all(&s, "\n");
    let s = re(&TAG, r"(?s)<[^>]*>").replace_all(&s, "");
    let s = s
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let lines: Vec<&str> = s.lines().map(str::trim).collect();
    re(&BLANK, r"\n{3,}")
        .replace_all(&lines.join("\n"), "\n\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_becomes_text() {
        let t = super::html_to_text("<html><head><title>x</title><style>a{}</style></head><body><h1>Title</h1><p>One &amp; two</p><script>evil()</script><ul><li>a<li>b</ul></body></html>");
        assert_eq!(t, "Title\nOne & two\n\na\nb");
    }
}
