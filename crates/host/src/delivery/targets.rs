//! Which platform message an edit or reaction targets, from this session's own records.

use super::*;

/// The platform message id behind a seq (or row id) the agent refers to: an odd seq is one of
/// its own sent messages (`delivered`), an even one a message it received (`platformMessageId`);
/// a string is first NanoClaw v2's form (see below).
pub(super) fn platform_message_of(
    dir: &std::path::Path,
    reference: &serde_json::Value,
) -> anyhow::Result<Option<String>> {
    let c = schema::open_inbound_write(dir)?;
    // NanoClaw v2's runner resolved the seq itself before writing the row: a string
    // `messageId` is then the platform id the host recorded for one of this session's sent
    // rows, or the id of one of its inbound rows (only ids this session's own records know are
    // used). Our runner writes the seq as a number; a string that names no such record but is
    // a number is still read as a seq.
    if let Some(id) = reference.as_str().filter(|s| !s.is_empty()) {
        if let Some(found) = v2_platform_message(dir, &c, id)? {
            return Ok(Some(found));
        }
    }
    let seq = reference
        .as_i64()
        .or_else(|| reference.as_str().and_then(|s| s.parse().ok()));
    let found: Option<String> = match seq {
        Some(seq) if seq % 2 == 1 => c
            .query_row(
                "SELECT d.platform_message_id FROM ob.messages_out o JOIN main.delivered d ON d.message_out_id = o.id WHERE o.seq = ?1",
                [seq],
                |r| r.get(0),
            )
            .optional()?
            .flatten(),
        Some(seq) => {
            let id: Option<String> = c
                .query_row(
                    "SELECT id FROM main.messages_in WHERE seq = ?1",
                    [seq],
                    |r| r.get(0),
                )
                .optional()?;
            match id {
                Some(id) => received_platform_message(dir, &c, &id)?,
                None => None,
            }
        }
        None => None,
    };
    Ok(found)
}

/// NanoClaw v2's `messageId` of an edit or reaction: a platform id in this session's
/// `delivered`, or an inbound row id.
pub(super) fn v2_platform_message(
    dir: &std::path::Path,
    c: &Connection,
    id: &str,
) -> anyhow::Result<Option<String>> {
    let sent: Option<String> = c
        .query_row(
            "SELECT platform_message_id FROM main.delivered
             WHERE platform_message_id = ?1 AND status = 'delivered' LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if sent.is_some() {
        return Ok(sent);
    }
    received_platform_message(dir, c, id)
}

/// The platform message id of one of this session's inbound rows (by row id): our rows carry
/// `platformMessageId`; NanoClaw v2's are named `<platform message id>:<agent group id>`.
pub(super) fn received_platform_message(
    dir: &std::path::Path,
    c: &Connection,
    id: &str,
) -> anyhow::Result<Option<String>> {
    let received: Option<Option<String>> = c
        .query_row(
            "SELECT CASE WHEN json_valid(content)
                 THEN CAST(json_extract(content, '$.platformMessageId') AS TEXT) END
             FROM main.messages_in WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match received {
        None => None,
        Some(Some(p)) => Some(p),
        Some(None) => {
            let ag = dir
                .parent()
                .and_then(std::path::Path::file_name)
                .and_then(std::ffi::OsStr::to_str);
            ag.and_then(|ag| id.strip_suffix(&format!(":{ag}")))
                .filter(|p| !p.is_empty())
                .map(str::to_string)
        }
    })
}
