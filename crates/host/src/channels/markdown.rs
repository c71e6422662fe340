//! Markdown → platform dialects. Models write common markdown; Telegram takes a small HTML
//! subset (`parse_mode: HTML`), which is the only mode where escaping is simple and total.

use std::sync::OnceLock;

use regex::{Captures, Regex};

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

/// Links, then emphasis. A link becomes a `<N>` placeholder while emphasis runs (escaped input
/// has no `<`, so a placeholder cannot be forged): emphasis then never reaches into an href and
/// wraps a link only whole.
fn styles(text: &str) -> String {
    static LINK: OnceLock<Regex> = OnceLock::new();
    static SLOT: OnceLock<Regex> = OnceLock::new();
    let link = re(&LINK, r#"\[([^\]\n]+)\]\((https?://[^)\s"]+)\)"#);
    let mut links = Vec::new();
    let mut flat = String::new();
    let mut last = 0;
    for c in link.captures_iter(text) {
        let m = c.get(0).expect("match");
        flat.push_str(&escape(&text[last..m.start()]));
        flat.push_str(&format!("<{}>", links.len()));
        links.push(format!(
            "<a href=\"{}\">{}</a>",
            escape(&c[2]),
            emphasis(&escape(&c[1]))
        ));
        last = m.end();
    }
    flat.push_str(&escape(&text[last..]));
    re(&SLOT, r"<(\d+)>")
        .replace_all(&emphasis(&flat), |c: &Captures| {
            c[1].parse::<usize>()
                .ok()
                .and_then(|i| links.get(i))
                .cloned()
                .unwrap_or_default()
        })
        .into_owned()
}

/// Bold, italic, strike on escaped text. A span whose inside would cut through a tag an earlier
/// pass added (`**a ~~b** c~~`) stays literal: Telegram refuses crossed tags.
fn emphasis(s: &str) -> String {
    static BOLD: OnceLock<Regex> = OnceLock::new();
    static ITALIC: OnceLock<Regex> = OnceLock::new();
    static STRIKE: OnceLock<Regex> = OnceLock::new();
    let group = |c: &Captures, i: usize| c.get(i).map_or("", |m| m.as_str()).to_string();
    let wrap = |c: &Captures, tag: &str, inside: String, around: (String, String)| {
        if nests(&inside) {
            format!("{}<{tag}>{inside}</{tag}>{}", around.0, around.1)
        } else {
            c[0].to_string()
        }
    };
    let no = || (String::new(), String::new());
    let s = re(&BOLD, r"\*\*([^*\n]+)\*\*|__([^_\n]+)__").replace_all(s, |c: &Captures| {
        wrap(c, "b", group(c, 1) + &group(c, 2), no())
    });
    let s = re(&ITALIC, r"(^|[\s(])[*_]([^*_\n]+)[*_]([\s).,!?:;]|$)")
        .replace_all(&s, |c: &Captures| {
            wrap(c, "i", group(c, 2), (group(c, 1), group(c, 3)))
        });
    let s = re(&STRIKE, r"~~([^~\n]+)~~")
        .replace_all(&s, |c: &Captures| wrap(c, "s", group(c, 1), no()));
    s.into_owned()
}

/// Whether the tags in `s` close in order (placeholders `<N>` are not tags).
fn nests(s: &str) -> bool {
    let mut open = Vec::new();
    for tag in s
        .split('<')
        .skip(1)
        .filter_map(|t| t.split_once('>'))
        .map(|(t, _)| t)
    {
        match tag.strip_prefix('/') {
            Some(name) if open.pop() != Some(name) => return false,
            Some(_) => {}
            None if tag.bytes().all(|b| b.is_ascii_digit()) => {}
            None => open.push(tag),
        }
    }
    open.is_empty()
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

    #[test]
    fn emphasis_never_crosses_tags_or_enters_an_href() {
        // Crossed spans: the inner one stays literal.
        assert_eq!(h("**a ~~b** c~~"), "<b>a ~~b</b> c~~");
        assert_eq!(h("**a _b** c_"), "<b>a _b</b> c_");
        // Emphasis marks inside a URL stay in the URL.
        assert_eq!(h("**[a](https://x**)"), "**<a href=\"https://x**\">a</a>");
        assert_eq!(h("[a](https://x(_y_.)"), "<a href=\"https://x(_y_.\">a</a>");
        assert_eq!(
            h("see [a ~~b~~](https://x/~~y~~?q=1&r=2) **[c](http://z)**"),
            "see <a href=\"https://x/~~y~~?q=1&amp;r=2\">a <s>b</s></a> <b><a href=\"http://z\">c</a></b>"
        );
        // A placeholder cannot be forged: input angle brackets are escaped first.
        assert_eq!(
            h("<0> [a](https://x)"),
            "&lt;0&gt; <a href=\"https://x\">a</a>"
        );
    }
}
