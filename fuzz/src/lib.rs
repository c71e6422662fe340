//! Invariants the fuzz targets share.

/// Checks Telegram HTML produced from `input`: only Telegram's tags, closed in order, nothing
/// inside code; every `<`, `>` and `&` is markup or an entity (so none came raw from the input);
/// links are http(s); and the visible text is a subsequence of the input (no text invented).
pub fn check_telegram_html(html: &str, input: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut visible = String::new();
    let mut rest = html;
    while let Some(i) = rest.find(['<', '>', '&']) {
        visible.push_str(&rest[..i]);
        rest = &rest[i..];
        match rest.as_bytes()[0] {
            b'>' => panic!("raw '>' in {html:?}"),
            b'&' => {
                let (ent, ch) = entity(rest).unwrap_or_else(|| panic!("raw '&' in {html:?}"));
                visible.push(ch);
                rest = &rest[ent..];
            }
            _ => {
                let end = rest.find('>').unwrap_or_else(|| panic!("unclosed tag in {html:?}"));
                let tag = &rest[1..end];
                rest = &rest[end + 1..];
                if let Some(name) = tag.strip_prefix('/') {
                    assert_eq!(open.pop(), Some(name), "crossed or stray </{name}> in {html:?}");
                    continue;
                }
                let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
                match (open.last().copied(), name) {
                    (Some("code"), _) => panic!("<{name}> inside <code> in {html:?}"),
                    (Some("pre"), "code") => {}
                    (Some("pre"), _) => panic!("<{name}> inside <pre> in {html:?}"),
                    _ => {}
                }
                match name {
                    "b" | "i" | "s" | "pre" => assert!(attrs.is_empty(), "{tag:?} in {html:?}"),
                    "code" => {
                        let lang = attrs
                            .strip_prefix("class=\"language-")
                            .and_then(|a| a.strip_suffix('"'));
                        assert!(
                            attrs.is_empty()
                                || lang.is_some_and(|l| l.bytes().all(|b| b.is_ascii_alphanumeric()
                                    || b"_+-".contains(&b))),
                            "{tag:?} in {html:?}"
                        );
                    }
                    "a" => {
                        let href = attrs
                            .strip_prefix("href=\"")
                            .and_then(|a| a.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("{tag:?} in {html:?}"));
                        assert!(
                            href.starts_with("https://") || href.starts_with("http://"),
                            "{tag:?}"
                        );
                        assert!(!href.contains(['"', '<', '>', ' ', '\n']), "{tag:?}");
                        let mut amp = href;
                        while let Some(j) = amp.find('&') {
                            let (len, _) = entity(&amp[j..]).unwrap_or_else(|| panic!("{tag:?}"));
                            amp = &amp[j + len..];
                        }
                    }
                    _ => panic!("tag {tag:?} Telegram does not know, in {html:?}"),
                }
                open.push(name);
            }
        }
    }
    visible.push_str(rest);
    assert!(open.is_empty(), "unclosed {open:?} in {html:?}");
    assert!(
        is_subsequence(&visible, input),
        "visible text {visible:?} is not taken from {input:?}"
    );
}

fn entity(s: &str) -> Option<(usize, char)> {
    [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>'), ("&quot;", '"')]
        .into_iter()
        .find(|(e, _)| s.starts_with(e))
        .map(|(e, c)| (e.len(), c))
}

/// Whether every char of `part` occurs in `whole`, in order.
pub fn is_subsequence(part: &str, whole: &str) -> bool {
    let mut w = whole.chars();
    part.chars().all(|c| w.any(|x| x == c))
}

/// Checks `telegram::split`: pieces fit, and only whitespace is lost at the cuts.
pub fn check_split(text: &str, pieces: &[String], max: usize) {
    assert!(!pieces.is_empty());
    for p in pieces {
        assert!(p.chars().count() <= max, "piece over {max} chars: {p:?}");
    }
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    assert_eq!(squash(&pieces.concat()), squash(text));
}
