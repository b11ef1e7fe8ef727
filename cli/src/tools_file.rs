//! The worker's tool catalogue for `consume --tools FILE` (`docs/spec.md` §10): a TOML file
//! with one `[tools]` table naming each tool the worker runs and its one action class.
//!
//! ```toml
//! [tools]
//! "crm.ticket.read" = "read"
//! "crm.ticket.close" = "write"
//! "crm.ticket.delete" = "destructive"
//! ```
//!
//! Tool names have dots, so they are quoted keys: an unquoted `crm.read = "read"` is a TOML
//! dotted key (a table `crm` holding `read`), which is refused with a hint.

use std::fmt::Display;
use std::path::Path;

use laissez_verify::ActionClass;
use laissez_verify::owned::{CatalogueError, OwnedCatalogue};
use laissez_verify::tools::is_tool_pattern;
use toml::de::{DeTable, DeValue};

use crate::failure::Failure;

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// What is wrong, and on which line.
#[derive(Debug, PartialEq, Eq)]
struct Bad {
    line: usize,
    what: String,
}

fn bad(text: &str, offset: usize, what: impl Display) -> Bad {
    Bad {
        line: line_of(text, offset),
        what: what.to_string(),
    }
}

/// Reads and parses a tools file: unreadable is an I/O error (exit 3), bad content a usage
/// error (exit 2) naming the file, the line and what is wrong.
pub(crate) fn load(path: &Path) -> Result<OwnedCatalogue, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("tools file {shown}: {e}")))?;
    parse(&text).map_err(|Bad { line, what }| {
        Failure::usage(format!("tools file {shown}, line {line}: {what}"))
    })
}

fn parse(text: &str) -> Result<OwnedCatalogue, Bad> {
    let document = DeTable::parse(text).map_err(|e| {
        let start = e.span().map_or(0, |span| span.start);
        // toml's own Display spans several lines; keep the message to one.
        bad(text, start, e.message().replace('\n', " ").trim())
    })?;
    let mut tools = None;
    for (key, value) in document.get_ref() {
        if key.get_ref() != "tools" {
            return Err(bad(
                text,
                key.span().start,
                format_args!(
                    "unknown key {:?}: the file holds one [tools] table",
                    key.get_ref()
                ),
            ));
        }
        tools = Some(value);
    }
    let Some(tools) = tools else {
        return Err(bad(text, 0, "no [tools] table"));
    };
    let Some(table) = tools.get_ref().as_table() else {
        return Err(bad(
            text,
            tools.span().start,
            format_args!(
                "tools must be a table ([tools]), not {}",
                tools.get_ref().type_str()
            ),
        ));
    };
    if table.is_empty() {
        return Err(bad(
            text,
            tools.span().start,
            "[tools] lists no tool: every message would be unknown_tool",
        ));
    }
    let mut catalogue = OwnedCatalogue::new();
    for (name, class) in table {
        let at = name.span().start;
        let name = name.get_ref().as_ref();
        let class = class_of(text, name, class.get_ref(), class.span().start)?;
        catalogue.insert(name, class).map_err(|e| match e {
            CatalogueError::InvalidName(_) if is_tool_pattern(name) => bad(
                text,
                at,
                format_args!(
                    "{name:?} is a pattern, not a tool name: list each tool the worker runs"
                ),
            ),
            other => bad(text, at, other),
        })?;
    }
    Ok(catalogue)
}

fn class_of(text: &str, name: &str, value: &DeValue<'_>, at: usize) -> Result<ActionClass, Bad> {
    let Some(class) = value.as_str() else {
        let hint = if value.is_table() {
            format!(
                "; a dotted tool name must be quoted: \"{name}.…\" = \"read\", not {name}.… = \"read\""
            )
        } else {
            String::new()
        };
        return Err(bad(
            text,
            at,
            format_args!(
                "tool {name:?}: expected a class name (read, write or destructive), found {}{hint}",
                value.type_str()
            ),
        ));
    };
    class.parse::<ActionClass>().map_err(|_| {
        bad(
            text,
            at,
            format_args!("tool {name:?}: unknown class {class:?} (read, write or destructive)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use laissez_verify::ToolCatalogue as _;

    use super::*;

    fn err(text: &str) -> (usize, String) {
        let Bad { line, what } = parse(text).unwrap_err();
        (line, what)
    }

    #[test]
    fn a_good_file_lists_each_tool_with_its_class() {
        let c = parse(
            "# the billing worker\n[tools]\n\"crm.ticket.read\" = \"read\"\n'crm.ticket.delete' = \"destructive\"\nping = \"read\"\n",
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.class_of("crm.ticket.delete"),
            Some(ActionClass::Destructive)
        );
        assert_eq!(c.class_of("ping"), Some(ActionClass::Read));
        assert_eq!(c.class_of("crm.ticket"), None);
    }

    #[test]
    fn each_mistake_names_its_line_and_what_is_wrong() {
        let (line, what) = err("[tools]\n\"a.b\" = \"read\"\n\"a.c\" = \"delete\"\n");
        assert_eq!(line, 3);
        assert!(what.contains("unknown class \"delete\""), "{what}");

        let (line, what) = err("[tools]\n\"crm.*\" = \"read\"\n");
        assert_eq!(line, 2);
        assert!(what.contains("is a pattern, not a tool name"), "{what}");

        let (line, what) = err("[tools]\n\"Crm.Read\" = \"read\"\n");
        assert_eq!(line, 2);
        assert!(what.contains("not a tool name"), "{what}");

        let (line, what) = err("[tools]\n\"a.b\" = \"read\"\n\n\"a.b\" = \"write\"\n");
        assert_eq!(line, 4);
        assert!(what.contains("duplicate"), "{what}");

        let (line, what) = err("tools = \"crm.read\"\n");
        assert_eq!(line, 1);
        assert!(what.contains("must be a table"), "{what}");

        let (line, what) = err("[tools]\ncrm.read = \"read\"\n");
        assert_eq!(line, 2);
        assert!(what.contains("must be quoted"), "{what}");

        let (line, what) = err("[tools]\n\"a.b\" = 4\n");
        assert_eq!(line, 2);
        assert!(what.contains("found integer"), "{what}");

        let (line, what) = err("[tools]\n\"a.b\" = \"read\"\n[other]\n");
        assert_eq!(line, 3);
        assert!(what.contains("unknown key \"other\""), "{what}");

        let (_, what) = err("# nothing\n");
        assert!(what.contains("no [tools] table"), "{what}");
        let (_, what) = err("[tools]\n");
        assert!(what.contains("lists no tool"), "{what}");
        let (line, what) = err("[tools]\n\"a.b\" = \"read\n");
        assert_eq!(line, 2);
        assert!(!what.contains('\n'), "{what}");
    }
}
