//! A global allocator that counts, per thread, the allocations made while a check is armed.
//!
//! The verifier promises no heap allocation at all (it is `no_std` without `alloc`); the
//! `decode` and `forge` targets wrap every call into it in [`allocations_during`] and
//! assert the count is zero. Deallocations are not counted: a path that frees without
//! allocating cannot exist.
//!
//! This is the one place with `unsafe` in the fuzz crates: a `GlobalAlloc` impl cannot be
//! written without it. It only forwards to `System` and bumps a thread-local counter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // `const` initialisers and no destructors: reading them never allocates and never
    // registers a TLS destructor, so they are safe to touch from inside the allocator.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// `System`, plus a count of allocations on threads that are inside [`allocations_during`].
#[derive(Debug)]
pub struct Counting;

fn note() {
    // `try_with`: never panic inside the allocator, even during thread teardown.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|count| count.set(count.get() + 1));
        }
    });
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; `note` touches only const-initialised thread-locals.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` was allocated by `System` through this allocator, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Disarms the counter when dropped, so that a panic inside a watched call leaves the
/// thread in its normal state.
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        ARMED.set(false);
    }
}

/// Runs `f` and returns its result with the number of allocations (and reallocations) it
/// made on this thread.
pub fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, u64) {
    COUNT.set(0);
    ARMED.set(true);
    let disarm = Disarm;
    let result = f();
    drop(disarm);
    (result, COUNT.get())
}

/// Guards the guard: panics unless the counter sees a `Vec` being allocated. Run once by
/// every target that asserts zero allocations, so a harness that silently stopped counting
/// (another allocator linked in, a refactor) cannot pass for an allocation-free library.
pub fn assert_counter_works() {
    let ((), n) = allocations_during(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(n >= 1, "the counting allocator missed an allocation");
}
