//! `subpath` (`docs/spec.md` §16): a root is an absolute path with no empty, `.` or `..`
//! segment and no trailing `/` (the root `/` aside); a string names the root or a path below
//! it once its own `.` and `..` are resolved. Nothing is percent-decoded and `\` is an
//! ordinary byte. One pass over the string's bytes: no allocation, no segment stack.

/// Whether `root` is a subpath root.
pub(super) fn is_root(root: &str) -> bool {
    if root == "/" {
        return true;
    }
    let Some(rest) = root.strip_prefix('/') else {
        return false;
    };
    rest.split('/')
        .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// Whether the root `inner` is `outer` or lies below it (narrowing of two roots).
pub(super) fn root_within(inner: &str, outer: &str) -> bool {
    outer == "/"
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The `i`-th segment of a root (no empty segments: the root was checked).
fn root_segment(root: &str, i: usize) -> Option<&str> {
    root.split('/').filter(|s| !s.is_empty()).nth(i)
}

/// Whether the string whose unescaped bytes are `bytes` names `root` or a path below it:
/// it starts with `/`, holds no NUL, never climbs above `/`, and once resolved its first
/// segments are the root's.
///
/// Resolution keeps two numbers instead of a stack of segments: `depth`, how many segments
/// the resolved path has so far, and `matched`, how many of its first segments are known to
/// equal the root's. A `..` shortens the path, and the segments before the new end are the
/// ones they were, so `matched` only needs capping at `depth`.
pub(super) fn holds(root: &str, bytes: impl Iterator<Item = u8>) -> bool {
    let root_len = root.split('/').filter(|s| !s.is_empty()).count();
    let mut depth = 0usize;
    let mut matched = 0usize;
    let mut first = true;
    // The segment being read: its length, its first two bytes, and whether it still equals
    // the root's segment at `depth` (when one is being compared).
    let mut len = 0usize;
    let mut head = [0u8; 2];
    let mut equal = true;
    let mut target: Option<&[u8]> = root_segment(root, 0).map(str::as_bytes);
    let end_segment = |len: usize,
                       head: [u8; 2],
                       equal: bool,
                       depth: &mut usize,
                       matched: &mut usize,
                       target: Option<&[u8]>|
     -> bool {
        match (len, head) {
            (0, _) | (1, [b'.', _]) => true,
            (2, [b'.', b'.']) => {
                if *depth == 0 {
                    return false;
                }
                *depth -= 1;
                *matched = (*matched).min(*depth);
                true
            }
            _ => {
                if *matched == *depth
                    && *depth < root_len
                    && equal
                    && target.is_some_and(|t| t.len() == len)
                {
                    *matched += 1;
                }
                *depth += 1;
                true
            }
        }
    };
    for b in bytes {
        if first {
            if b != b'/' {
                return false;
            }
            first = false;
            continue;
        }
        match b {
            0 => return false,
            b'/' => {
                if !end_segment(len, head, equal, &mut depth, &mut matched, target) {
                    return false;
                }
                len = 0;
                head = [0; 2];
                equal = true;
                target = root_segment(root, depth).map(str::as_bytes);
            }
            _ => {
                if let Some(slot) = head.get_mut(len) {
                    *slot = b;
                }
                equal = equal && target.and_then(|t| t.get(len)) == Some(&b);
                len += 1;
            }
        }
    }
    if first {
        return false;
    }
    end_segment(len, head, equal, &mut depth, &mut matched, target) && matched == root_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn under(root: &str, s: &str) -> bool {
        holds(root, s.bytes())
    }

    #[test]
    fn roots() {
        for ok in ["/", "/srv", "/srv/data", "/a b/\\c"] {
            assert!(is_root(ok), "{ok}");
        }
        for bad in [
            "",
            "srv",
            "/srv/",
            "//srv",
            "/srv//data",
            "/./srv",
            "/srv/..",
            "/srv/.",
        ] {
            assert!(!is_root(bad), "{bad}");
        }
    }

    #[test]
    fn resolution() {
        assert!(under("/srv/data", "/srv/data"));
        assert!(under("/srv/data", "/srv/data/"));
        assert!(under("/srv/data", "/srv/data/x/y"));
        assert!(under("/srv/data", "//srv/./data//x"));
        assert!(under("/srv/data", "/srv/data/x/../y"));
        assert!(under("/srv/data", "/tmp/../srv/data/x"));
        assert!(!under("/srv/data", "/srv/data/../secret"));
        assert!(!under("/srv/data", "/srv/database"));
        assert!(!under("/srv/data", "/srv"));
        assert!(!under("/srv/data", "srv/data"));
        assert!(!under("/srv/data", ""));
        assert!(!under("/srv/data", "/srv/data/x\0"));
        assert!(!under("/", "/.."));
        assert!(!under("/srv", "/srv/../../srv"));
        assert!(under("/", "/"));
        assert!(under("/", "/anything/at/all"));
        assert!(!under("/srv/data", "/srv/data/%2e%2e/x/../../.."));
        assert!(under("/srv/data", "/srv/data/%2e%2e"));
        assert!(!under("/srv/data", "/srv\\data"));
        assert!(under("/srv/data", "/srv/data/.../x"));
        assert!(!under("/srv/data", "/srv/dat"));
        assert!(!under("/a/b", "/a/x/../c/../b/../../a"));
        assert!(under("/a/b", "/a/x/../c/../b/../../a/b"));
    }

    #[test]
    fn narrowing_of_roots() {
        assert!(root_within("/srv/data", "/srv"));
        assert!(root_within("/srv", "/srv"));
        assert!(root_within("/srv", "/"));
        assert!(!root_within("/srvx", "/srv"));
        assert!(!root_within("/", "/srv"));
    }
}
