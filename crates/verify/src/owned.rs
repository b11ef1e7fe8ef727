//! Owned copies of claims, for handlers that outlive the message buffer.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::claims::Claims;
use crate::tools::Classes;

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
            version: self.version(),
            tools: self
                .tools()
                .map(|t| OwnedToolGrant {
                    pattern: t.pattern.to_string(),
                    classes: t.classes,
                    own_classes: t.own_classes,
                })
                .collect(),
            classes: self.classes(),
            max_uses: self.max_uses(),
            obo: self.obo().map(ToString::to_string),
            sid: self.sid().map(ToString::to_string),
        }
    }
}
