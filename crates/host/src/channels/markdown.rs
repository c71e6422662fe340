//! Markdown → platform dialects. Models write common markdown; Telegram takes a small HTML
//! subset (`parse_mode: HTML`), which is the only mode where escaping is simple and total.

use std::sync::OnceLock;

use regex::Regex;

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Converts markdown (code fences, inline code, bold, italic, strike, links) to Telegram HTML.
/// Code is escaped and left alone; everything else is escaped before tags are added, so model
/// text can never inject markup.
pub fn to_telegram_html(md: &str) -> String {
    static FENCE: OnceLock<Regex> = OnceLock::new();
    let fence = re(&FENCE, r"(?s)```([A-Za-z0-9_+-]*)\n?(.*?)```");
    let mut out = String::new();
    let mut last = 0;
    for c in fence.captures_iter(md) {
        let m = c.get(0).expect("match");
        out.push_str(&inline(&md[last..m.start()]));
        let lang = &c[1];
        let code = escape(c[2].trim_end_matches('\n'));
        if lang.is_empty() {
            out.push_str(&format!("<pre>{code}</pre>"));
        } else {
            out.push_str(&format!(
                "<pre><code class=\"language-{lang}\">{code}</code></pre>"
            ));
        }
        last = m.end();
    }
    out.push_str(&inline(&md[last..]));
    out
}

fn inline(text: &str) -> String {
    static CODE: OnceLock<Regex> = OnceLock::new();
    let code = re(&CODE, r"`([^`\n]+)`");
    let mut out = String::new();
    let mut last = 0;
    for c in code.captures_iter(text) {
        let m = c.get(0).expect("match");
        out.push_str(&styles(&text[last..m.start()]));
        out.push_str(&format!("<code>{}</code>", escape(&c[1])));
        last = m.end();
    }
    out.push_str(&styles(&text[last..]));
    out
}

fn styles(text: &str) -> String {
    static LINK: OnceLock<Regex> = OnceLock::new();
    static BOLD: OnceLock<Regex> = OnceLock::new();
    static ITALIC: OnceLock<Regex> = OnceLock::new();
    static STRIKE: OnceLock<Regex> = OnceLock::new();
    let s = escape(text);
    let s = re(&LINK, r#"\[([^\]\n]+)\]\((https?://[^)\s"]+)\)"#)
        .replace_all(&s, r#"<a href="$2">$1</a>"#);
    let s = re(&BOLD, r"\*\*([^*\n]+)\*\*|__([^_\n]+)__").replace_all(&s, "<b>$1$2</b>");
    let s =
        re(&ITALIC, r"(^|[\s(])[*_]([^*_\n]+)[*_]([\s).,!?:;]|$)").replace_all(&s, "$1<i>$2</i>$3");
    let s = re(&STRIKE, r"~~([^~\n]+)~~").replace_all(&s, "<s>$1</s>");
    s.into_owned()
}

#[cfg(test)]
mod tests {
    use super::to_telegram_html as h;

    #[test]
    fn common_markdown_to_telegram_html() {
        assert_eq!(
            h("**bold** and *it* and ~~gone~~"),
            "<b>bold</b> and <i>it</i> and <s>gone</s>"
        );
        assert_eq!(h("a < b & c"), "a &lt; b &amp; c");
        assert_eq!(
            h("run `ls <dir>` now"),
            "run <code>ls &lt;dir&gt;</code> now"
        );
        assert_eq!(
            h("```rust\nfn main() {}\n```"),
            "<pre><code class=\"language-rust\">fn main() {}</code></pre>"
        );
        assert_eq!(
            h("[site](https://example.com/a_b)"),
            "<a href=\"https://example.com/a_b\">site</a>"
        );
        assert_eq!(h("<b>not markup</b>"), "&lt;b&gt;not markup&lt;/b&gt;");
        assert_eq!(h("snake_case_name stays"), "snake_case_name stays");
    }
}
