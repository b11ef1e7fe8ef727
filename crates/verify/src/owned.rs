//! Owned copies of claims, for handlers that outlive the message buffer.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::claims::Claims;
use crate::keys::Kid;
use crate::tools::{ActionClass, Classes, ToolCatalogue, is_tool_name};

/// One tool grant, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedToolGrant {
    /// The pattern.
    pub pattern: String,
    /// The classes it allows (resolved).
    pub classes: Classes,
    /// Whether it carried its own classes on the wire.
    pub own_classes: bool,
}

/// A claims set, owned. Made from [`Claims`] with [`Claims::to_owned_claims`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnedClaims {
    /// Issuer name.
    pub iss: Option<String>,
    /// Agent identity.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Whether `aud` was a list on the wire.
    pub aud_is_list: bool,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Issued at (Unix seconds).
    pub iat: Option<u64>,
    /// Envelope id.
    pub cti: [u8; 16],
    /// The holder's raw public key (`cnf`), when holder-bound.
    pub holder: Option<[u8; 32]>,
    /// Grant version.
    pub version: u64,
    /// Tool grants.
    pub tools: Vec<OwnedToolGrant>,
    /// Classes of bare-pattern grants.
    pub classes: Classes,
    /// Maximum distinct messages.
    pub max_uses: u64,
    /// On behalf of.
    pub obo: Option<String>,
    /// Session id.
    pub sid: Option<String>,
    /// The approval rule, when some class needs human approval.
    pub approval: Option<OwnedApprovalRule>,
}

/// A grant's approval rule, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnedApprovalRule {
    /// Classes that need approval.
    pub classes: Classes,
    /// Distinct approvals needed.
    pub m: u8,
    /// The approvers' kids, ascending.
    pub approvers: Vec<Kid>,
}

impl Claims<'_> {
    /// Copies the claims into owned values.
    pub fn to_owned_claims(&self) -> OwnedClaims {
        OwnedClaims {
            iss: self.iss().map(ToString::to_string),
            sub: self.sub().to_string(),
            aud: self.aud().map(ToString::to_string).collect(),
            aud_is_list: self.aud_is_list(),
            exp: self.exp(),
            nbf: self.nbf(),
            iat: self.iat(),
            cti: *self.cti(),
            holder: self.holder().map(|k| *k.as_bytes()),
            version: self.version(),
            tools: self
                .tools()
                .map(|t| OwnedToolGrant {
                    pattern: t.pattern.as_str().to_string(),
                    classes: t.classes,
                    own_classes: t.own_classes,
                })
                .collect(),
            classes: self.classes(),
            max_uses: self.max_uses(),
            obo: self.obo().map(ToString::to_string),
            sid: self.sid().map(ToString::to_string),
            approval: self.approval().map(|rule| OwnedApprovalRule {
                classes: rule.classes(),
                m: rule.m(),
                approvers: rule.approvers().collect(),
            }),
        }
    }
}

/// A worker's tool catalogue, owned: each tool it runs with its one action class.
///
/// Built in code (the middleware's configuration) or from the command line's TOML file.
/// Names are checked against the tool grammar when added, so a catalogue never lists a
/// pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedCatalogue {
    tools: alloc::collections::BTreeMap<String, ActionClass>,
}

/// Why a tool cannot enter a catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogueError {
    /// The name is not a tool name (a pattern, or out of grammar).
    InvalidName(String),
    /// The tool is listed twice.
    Duplicate(String),
}

impl core::fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CatalogueError::InvalidName(name) => write!(
                f,
                "{name:?} is not a tool name (dot-separated segments of a-z, 0-9, _ or -; no patterns)"
            ),
            CatalogueError::Duplicate(name) => write!(f, "tool {name:?} is listed twice"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CatalogueError {}

impl OwnedCatalogue {
    /// An empty catalogue: every tool is `unknown_tool`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `tool` with `class`; refuses a name out of grammar or listed before.
    pub fn insert(&mut self, tool: &str, class: ActionClass) -> Result<(), CatalogueError> {
        if !is_tool_name(tool) {
            return Err(CatalogueError::InvalidName(tool.to_string()));
        }
        if self.tools.insert(tool.to_string(), class).is_some() {
            return Err(CatalogueError::Duplicate(tool.to_string()));
        }
        Ok(())
    }

    /// Adds `tool` with `class`, builder style.
    pub fn with(mut self, tool: &str, class: ActionClass) -> Result<Self, CatalogueError> {
        self.insert(tool, class)?;
        Ok(self)
    }

    /// How many tools it lists.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether it lists no tool.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The tools and their classes, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ActionClass)> {
        self.tools.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

impl ToolCatalogue for OwnedCatalogue {
    fn class_of(&self, tool: &str) -> Option<ActionClass> {
        self.tools.get(tool).copied()
    }
}
