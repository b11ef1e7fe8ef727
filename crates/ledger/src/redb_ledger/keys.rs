//! The byte keys of the redb tables, each an injective encoding of what it names, so that no
//! two records share a key whatever ctis and message ids an agent chooses.
//!
//! A path (`docs/spec.md` §8): a root is its 16-byte cti (the key every earlier version used,
//! so a root's count and entries carry over); a delegated envelope is its root's cti, `0xff`,
//! its depth (2 to 4) and the ctis below the root. After a path, an entry's message id follows
//! (UTF-8 never holds `0xff`, and a message id is never empty), and a charge's count of ctis
//! (1 to 3, never `0xff`) below its ancestor.

use crate::path::ChainPath;

/// Follows a root's cti in the path of a delegated envelope.
const CHILD_MARK: u8 = 0xff;

/// Kinds of record in the expiry index.
pub(super) const KIND_COUNTER: u8 = 0;
pub(super) const KIND_ENTRY: u8 = 1;
pub(super) const KIND_CHARGE: u8 = 2;
pub(super) const KIND_BUDGET: u8 = 3;

/// An envelope's path: the key of its count.
pub(super) fn path_key(path: &ChainPath) -> Vec<u8> {
    let mut key = Vec::with_capacity(18 + 16 * path.depth());
    key.extend_from_slice(path.root_cti());
    if path.depth() > 1 {
        key.push(CHILD_MARK);
        // At most four.
        key.push(path.depth() as u8);
        for cti in path.below_root() {
            key.extend_from_slice(cti);
        }
    }
    key
}

/// The key of one message's entry under an envelope.
pub(super) fn entry_key(path: &ChainPath, message_id: &str) -> Vec<u8> {
    let mut key = path_key(path);
    key.extend_from_slice(message_id.as_bytes());
    key
}

/// The key of an envelope's budget sum: its path, then the budget's index. A path's key has
/// one length per depth, so one byte more names one budget of one path.
pub(super) fn budget_key(path: &ChainPath, index: u8) -> Vec<u8> {
    let mut key = path_key(path);
    key.push(index);
    key
}

/// The key of the charge of `leaf`'s message to its ancestor of depth `ancestor_depth`:
/// the ancestor's path, how many ctis the leaf is below it, those ctis, the message id.
pub(super) fn charge_key(leaf: &ChainPath, ancestor_depth: usize, message_id: &str) -> Vec<u8> {
    let mut key = path_key(&leaf.prefix(ancestor_depth));
    let below = leaf.below(ancestor_depth);
    // 1 to 3.
    key.push(below.len() as u8);
    for cti in below {
        key.extend_from_slice(cti);
    }
    key.extend_from_slice(message_id.as_bytes());
    key
}

/// An expiry index key: the expiry (big-endian, so the index is ordered by it), the kind of
/// record, and the record's own key.
pub(super) fn expiry_key(expires_at: u64, kind: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roots_keys_are_its_cti_as_before() {
        let root = ChainPath::root(&[7; 16]);
        assert_eq!(path_key(&root), vec![7; 16]);
        let mut entry = vec![7; 16];
        entry.extend_from_slice(b"m1");
        assert_eq!(entry_key(&root, "m1"), entry);
    }

    #[test]
    fn a_child_with_a_strangers_cti_has_keys_of_its_own() {
        let victim = ChainPath::root(&[7; 16]);
        let child = ChainPath::new([[1; 16]], &[7; 16]);
        let sibling = ChainPath::new([[1; 16]], &[8; 16]);
        let grandchild = ChainPath::new([[1; 16], [8; 16]], &[7; 16]);
        let keys = [&victim, &child, &sibling, &grandchild].map(path_key);
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[..i] {
                assert_ne!(a, b);
                assert!(!a.starts_with(b) || b.len() == 16, "{a:?} extends {b:?}");
            }
        }
        // Charges to the root from two different leaves never meet.
        assert_ne!(
            charge_key(&grandchild, 1, "m"),
            charge_key(&ChainPath::new([[1; 16], [8; 16]], &[9; 16]), 1, "m")
        );
        assert_ne!(
            charge_key(&grandchild, 1, "m"),
            charge_key(&grandchild, 2, "m")
        );
    }
}
