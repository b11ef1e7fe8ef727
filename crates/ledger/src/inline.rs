//! A list kept inline, for what one begin reads and decides (`docs/spec.md` §17): a chain
//! holds at most four envelopes of at most eight budgets each, so the views of a begin and
//! the counts and sums it decides fit fixed arrays, and a budgeted use allocates no more than
//! an unbudgeted one.

use std::ops::{Deref, DerefMut};

use crate::LedgerError;

/// At most `N` items, the first `len` of `items`; the rest stay `T::default()`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inline<T, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Inline<T, N> {
    /// An empty list.
    pub(crate) fn new() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// `len` copies of `item`, or `None` when `len` passes `N`.
    pub(crate) fn filled(len: usize, item: T) -> Option<Self> {
        let mut out = Self::new();
        out.items.get_mut(..len)?.fill(item);
        out.len = len;
        Some(out)
    }

    /// Appends `item`. A begin never holds more than `N` (`normalize` bounds the chain and
    /// each envelope's charges); were it to, the request is refused rather than cut short,
    /// since a view left out would be a budget not checked.
    pub(crate) fn push(&mut self, item: T) -> Result<(), LedgerError> {
        let slot = self
            .items
            .get_mut(self.len)
            .ok_or(LedgerError::InvalidRequest(
                "more budgets or ancestors than a chain holds",
            ))?;
        *slot = item;
        self.len += 1;
        Ok(())
    }
}

impl<T, const N: usize> Deref for Inline<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<T, const N: usize> DerefMut for Inline<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
}

impl<T: PartialEq, const N: usize> PartialEq for Inline<T, N> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq, const N: usize> Eq for Inline<T, N> {}

/// The state machine's tests compare decisions with the lists they expect.
#[cfg(test)]
impl<T: PartialEq, const N: usize> PartialEq<Vec<T>> for Inline<T, N> {
    fn eq(&self, other: &Vec<T>) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_up_to_its_capacity_and_refuses_more() {
        let mut list: Inline<u8, 2> = Inline::new();
        list.push(1).unwrap();
        list.push(2).unwrap();
        assert!(list.push(3).is_err());
        assert_eq!(*list, [1, 2]);
        assert_eq!(Inline::<u8, 2>::filled(2, 7).unwrap(), vec![7, 7]);
        assert!(Inline::<u8, 2>::filled(3, 7).is_none());
        // Equal by their items, whatever was pushed before.
        assert_eq!(Inline::<u8, 2>::filled(0, 7).unwrap(), Inline::new());
    }
}
