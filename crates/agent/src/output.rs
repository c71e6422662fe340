//! Parsing the model's final text: `<internal>` is never sent, `<message to="name">` blocks go
//! to named destinations, the rest goes to the default route (DESIGN §7).

use std::sync::OnceLock;

use regex::Regex;

/// One piece of output and where it goes (`None` = the default route).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Destination name from `<message to="…">`.
    pub to: Option<String>,
    /// Text to send.
    pub text: String,
}

fn internal_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?s)<internal>.*?(</internal>|\z)").expect("static regex"))
}

fn message_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?s)<message\s+to\s*=\s*["']([^"']*)["']\s*>(.*?)</message>"#)
            .expect("static regex")
    })
}

/// Splits model output into parts; empty parts are dropped.
pub fn parse(text: &str) -> Vec<Part> {
    let cleaned = internal_re().replace_all(text, "");
    let mut parts = Vec::new();
    let mut rest = String::new();
    let mut last = 0;
    for cap in message_re().captures_iter(&cleaned) {
        let m = cap.get(0).expect("whole match");
        rest.push_str(&cleaned[last..m.start()]);
        last = m.end();
        let body = cap[2].trim();
        if !body.is_empty() {
            parts.push(Part {
                to: Some(cap[1].trim().to_string()),
                text: body.to_string(),
            });
        }
    }
    rest.push_str(&cleaned[last..]);
    let rest = rest.trim();
    if !rest.is_empty() {
        parts.insert(
            0,
            Part {
                to: None,
                text: rest.to_string(),
            },
        );
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dropped_blocks_routed_rest_default() {
        let p = parse("<internal>thinking</internal>Hello!\n<message to=\"family\">Dinner at 7</message>\n<internal>unclosed");
        assert_eq!(
            p,
            vec![
                Part {
                    to: None,
                    text: "Hello!".into()
                },
                Part {
                    to: Some("family".into()),
                    text: "Dinner at 7".into()
                },
            ]
        );
        assert!(parse("<internal>only thoughts</internal>").is_empty());
        assert_eq!(parse("plain")[0].text, "plain");
    }
}
