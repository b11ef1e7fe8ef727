//! Signing profiles: `sign --profile FILE`, a TOML file with the same fields as `sign`'s
//! long flags, so that orchestrators keep per-agent templates in version control.
//!
//! ```toml
//! agent = "spiffe://acme.example/agent/support-bot"
//! aud = ["billing-queue"]
//! tool = ["crm.ticket.*", "crm.ticket.close=write"]
//! classes = "read"
//! max_uses = 3
//! ttl = "15m"
//! ```

use std::path::Path;

use laissez_sign::ToolSpec;
use laissez_verify::Classes;
use serde::Deserialize;

use crate::failure::Failure;

/// A profile as written. Unknown fields are an error: a misspelt field must not silently
/// widen or narrow a grant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    agent: Option<String>,
    aud: Option<Vec<String>>,
    tool: Option<Vec<String>>,
    classes: Option<String>,
    max_uses: Option<u64>,
    ttl: Option<String>,
    obo: Option<String>,
    session: Option<String>,
    iss: Option<String>,
}

/// A profile with every text form parsed.
#[derive(Debug, Default)]
pub(crate) struct Profile {
    pub(crate) agent: Option<String>,
    pub(crate) aud: Option<Vec<String>>,
    pub(crate) tool: Option<Vec<ToolSpec>>,
    pub(crate) classes: Option<Classes>,
    pub(crate) max_uses: Option<u64>,
    pub(crate) ttl: Option<u64>,
    pub(crate) obo: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) iss: Option<String>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// Reads and parses a profile: unreadable is an I/O error (exit 3), bad content a usage
/// error (exit 2), each naming the file.
pub(crate) fn load(path: &Path) -> Result<Profile, Failure> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure::io(format!("profile {shown}: {e}")))?;
    let raw: RawProfile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(&text, span.start));
        // toml's own Display spans several lines; keep the message to one.
        let message = e.message().replace('\n', " ");
        Failure::usage(format!("profile {shown}, line {line}: {}", message.trim()))
    })?;
    let field = |name: &str, e: &dyn std::fmt::Display| {
        Failure::usage(format!("profile {shown}: {name}: {e}"))
    };
    Ok(Profile {
        agent: raw.agent,
        aud: raw.aud,
        tool: raw
            .tool
            .map(|tools| {
                tools
                    .iter()
                    .map(|t| t.parse::<ToolSpec>().map_err(|e| field("tool", &e)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
        classes: raw
            .classes
            .map(|c| laissez_sign::parse_classes(&c).map_err(|e| field("classes", &e)))
            .transpose()?,
        max_uses: raw.max_uses,
        ttl: raw
            .ttl
            .map(|t| laissez_sign::parse_duration(&t).map_err(|e| field("ttl", &e)))
            .transpose()?,
        obo: raw.obo,
        session: raw.session,
        iss: raw.iss,
    })
}
