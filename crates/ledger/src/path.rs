//! An envelope's place in its chain: the ctis from the root down to it (`docs/spec.md` §8).
//!
//! Every backend keys an envelope's count and its messages' entries by this path, never by the
//! cti alone: an agent chooses its child's cti, so a child given a stranger's (or a sibling's)
//! cti still has a path of its own, under its own root and parent, and can never reach the
//! other's count. A root's path is its cti alone, so a root's keys are what they were before
//! paths (see `docs/ledger.md` for what carries over).

use crate::{Ancestor, Begin, Cti, LeaseToken};

/// The most envelopes of a chain.
const MAX_DEPTH: usize = laissez_verify::wire::MAX_CHAIN_LEN;

/// The ctis from a chain's root down to one envelope of it, 1 to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ChainPath {
    ctis: [Cti; MAX_DEPTH],
    len: u8,
}

impl ChainPath {
    /// The path of `leaf` under `ancestors` (root first). Callers bound `ancestors` to three
    /// (`normalize`); any beyond are not part of a chain and are left out.
    pub(crate) fn new(ancestors: impl IntoIterator<Item = Cti>, leaf: &Cti) -> Self {
        let mut ctis = [[0; 16]; MAX_DEPTH];
        let mut len = 0;
        for cti in ancestors.into_iter().take(MAX_DEPTH - 1) {
            ctis[len] = cti;
            len += 1;
        }
        ctis[len] = *leaf;
        Self {
            ctis,
            // At most four.
            len: (len + 1) as u8,
        }
    }

    /// The path of a root (or of an envelope that is not delegated).
    pub(crate) fn root(cti: &Cti) -> Self {
        Self::new([], cti)
    }

    /// The path of a begin's leaf.
    pub(crate) fn of_begin(req: &Begin<'_>) -> Self {
        Self::new(req.ancestors.iter().map(|a: &Ancestor<'_>| *a.cti), req.cti)
    }

    /// The path of the envelope a lease was granted to: the lease's chain, then `cti`.
    pub(crate) fn of_lease(cti: &Cti, lease: &LeaseToken) -> Self {
        Self::new(lease.ancestors().iter().copied(), cti)
    }

    /// The path of the `depth` first envelopes (1 to this path's own depth).
    pub(crate) fn prefix(&self, depth: usize) -> Self {
        let mut out = *self;
        let depth = depth.clamp(1, self.depth());
        // At most four.
        out.len = depth as u8;
        for cti in &mut out.ctis[depth..] {
            *cti = [0; 16];
        }
        out
    }

    /// The ctis, root first.
    pub(crate) fn ctis(&self) -> &[Cti] {
        &self.ctis[..self.depth()]
    }

    /// How many envelopes: 1 for a root.
    pub(crate) fn depth(&self) -> usize {
        usize::from(self.len)
    }

    /// The root's cti.
    pub(crate) fn root_cti(&self) -> &Cti {
        &self.ctis[0]
    }

    /// The ctis below the root, root's child first (empty for a root).
    pub(crate) fn below_root(&self) -> &[Cti] {
        &self.ctis()[1..]
    }

    /// The ctis below the first `depth` envelopes.
    pub(crate) fn below(&self, depth: usize) -> &[Cti] {
        &self.ctis()[depth.min(self.depth())..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_is_its_cti_and_prefixes_forget_the_rest() {
        let path = ChainPath::new([[1; 16], [2; 16]], &[3; 16]);
        assert_eq!(path.ctis(), &[[1; 16], [2; 16], [3; 16]]);
        assert_eq!(path.prefix(1), ChainPath::root(&[1; 16]));
        assert_eq!(path.prefix(2), ChainPath::new([[1; 16]], &[2; 16]));
        assert_eq!(path.below(1), &[[2; 16], [3; 16]]);
        assert_eq!(path.below_root(), path.below(1));
        // The same cti under another root, or as a root, is another path.
        assert_ne!(
            ChainPath::new([[9; 16]], &[3; 16]),
            ChainPath::new([[1; 16]], &[3; 16])
        );
        assert_ne!(
            ChainPath::root(&[3; 16]),
            ChainPath::new([[1; 16]], &[3; 16])
        );
    }
}
