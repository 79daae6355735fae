//! A global allocator that forwards to the system allocator and records
//! the largest single request since the last [`reset`].
//!
//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's allocator hooks, so
//! it does nothing in a `--sanitizer none` build; this works in every
//! build. It records requests from every thread, which is what a
//! single-threaded target such as `decode` wants.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Largest allocation (or reallocation target) in bytes since [`reset`].
static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, watched. Install with `#[global_allocator]`.
pub struct Watched;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the bookkeeping touches
// only an atomic.
unsafe impl GlobalAlloc for Watched {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Relaxed);
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Forgets the largest allocation seen so far.
pub fn reset() {
    LARGEST.store(0, Relaxed);
}

/// The largest allocation since the last [`reset`], in bytes (0 when the
/// watched allocator is not installed).
pub fn largest() -> usize {
    LARGEST.load(Relaxed)
}
