//! Cards and question options, read leniently (as NanoClaw v2 writes them) into what a channel
//! renders.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An `ask_question` option, normalised as NanoClaw v2 does before delivery and persistence:
/// `label` on the button, `selectedLabel` shown once chosen, `value` handed to the agent.
/// Bare strings are accepted for all three.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionOption {
    /// Button text.
    pub label: String,
    /// Shown on the card after the choice.
    pub selected_label: String,
    /// What the agent receives.
    pub value: String,
}

impl QuestionOption {
    /// A string, or an object with a non-empty `label` (older writers: `text` / `value`).
    pub fn normalize(raw: &Value) -> Option<Self> {
        let s = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let label = match raw {
            Value::String(_) => s(Some(raw))?,
            _ => ["label", "text", "value"]
                .iter()
                .find_map(|k| s(raw.get(k)))?,
        };
        Some(Self {
            selected_label: s(raw.get("selectedLabel")).unwrap_or_else(|| label.clone()),
            value: s(raw.get("value")).unwrap_or_else(|| label.clone()),
            label,
        })
    }

    /// Every usable option of a list (unusable ones are left out).
    pub fn normalize_all(raw: &[Value]) -> Vec<Self> {
        raw.iter().filter_map(Self::normalize).collect()
    }

    /// The card's text once this option was chosen.
    pub fn chosen_text(&self) -> String {
        if self.selected_label == self.label {
            format!("✓ {}", self.label)
        } else {
            self.selected_label.clone()
        }
    }
}

/// A `send_card` card (`{title, description, children, actions}`, NanoClaw v2's shape) read
/// leniently: unknown fields are ignored, children may be strings or `{text}` objects, and only
/// actions with a label and an http(s) URL survive — a card is fire-and-forget, so a button
/// without a link would have nowhere to land.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardView {
    /// Title.
    pub title: String,
    /// Description, then each child, one paragraph each.
    pub lines: Vec<String>,
    /// Link buttons: (label, url).
    pub links: Vec<(String, String)>,
}

impl CardView {
    /// Reads a card body.
    pub fn parse(card: &Value) -> Self {
        let text = |v: &Value| {
            v.as_str()
                .or_else(|| v.get("text").and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let title = card.get("title").and_then(text).unwrap_or_default();
        let lines = card
            .get("description")
            .into_iter()
            .chain(
                card.get("children")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .filter_map(text)
            .collect();
        let links = card
            .get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let label = a.get("label").and_then(Value::as_str)?.trim();
                let url = a.get("url").and_then(Value::as_str)?.trim();
                let web = url.starts_with("https://") || url.starts_with("http://");
                (!label.is_empty() && web && !url.contains(char::is_whitespace))
                    .then(|| (label.to_string(), url.to_string()))
            })
            .collect();
        Self {
            title,
            lines,
            links,
        }
    }

    /// Nothing to show.
    pub fn is_empty(&self) -> bool {
        self.title.is_empty() && self.lines.is_empty() && self.links.is_empty()
    }

    /// The card as markdown: bold title, paragraphs, and (`with_links`) one `label: url` line
    /// per link for channels that cannot show link buttons.
    pub fn markdown(&self, with_links: bool) -> String {
        let mut parts = Vec::new();
        if !self.title.is_empty() {
            parts.push(format!("**{}**", self.title));
        }
        parts.extend(self.lines.iter().cloned());
        if with_links && !self.links.is_empty() {
            let links: Vec<String> = self
                .links
                .iter()
                .map(|(l, u)| format!("{l}: {u}"))
                .collect();
            parts.push(links.join("\n"));
        }
        parts.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_render_leniently() {
        let card = serde_json::json!({"title": " Daily ", "description": "Your plate",
            "children": ["• one", {"text": "• two"}, 3, ""],
            "actions": [{"label": "Docs", "url": "https://example.com/d"}, {"label": "Add"},
                {"label": "Evil", "url": "javascript:alert(1)"}, {"label": "", "url": "https://x"}]});
        let v = CardView::parse(&card);
        assert_eq!(v.title, "Daily");
        assert_eq!(v.lines, ["Your plate", "• one", "• two"]);
        assert_eq!(
            v.links,
            [("Docs".to_string(), "https://example.com/d".to_string())]
        );
        assert_eq!(
            v.markdown(true),
            "**Daily**\n\nYour plate\n\n• one\n\n• two\n\nDocs: https://example.com/d"
        );
        assert!(!v.markdown(false).contains("example.com"));
        assert!(CardView::parse(&serde_json::json!("not an object")).is_empty());
    }

    #[test]
    fn question_options_normalise_like_v2() {
        let raw = serde_json::json!(["Tea", {"label": "Go", "selectedLabel": "Going!", "value": "go"},
            {"text": "Old"}, {"label": ""}, 7]);
        let o = QuestionOption::normalize_all(raw.as_array().unwrap());
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].value.as_str(), o[0].chosen_text()),
            ("Tea", "✓ Tea".to_string())
        );
        assert_eq!(
            (o[1].value.as_str(), o[1].chosen_text()),
            ("go", "Going!".to_string())
        );
        assert_eq!(o[2].label, "Old");
        let stored = serde_json::to_value(&o[1]).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"label": "Go", "selectedLabel": "Going!", "value": "go"})
        );
    }
}
