//! The hot path allocates nothing: a forward pass after the first makes no heap allocation
//! (buffers and scratch are sized at construction).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{dense_ops, random_params, tiny_alexnet, values};
use qcnn_baselines::DenseNetwork;
use qcnn_model::synthetic::{synthetic_image, synthetic_model};
use qcnn_runner::Pipeline;
use qcnn_runner::{Network, NoObserver};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Counts allocations made by the current thread while counting is on.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwards the caller's valid layout to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations_in(|| {
        std::hint::black_box(vec![0u8; 8]);
    });
    assert_eq!(n, 1);
}

#[test]
fn pipeline_forward_allocates_nothing() {
    let arch = tiny_alexnet();
    let params = random_params(&arch, 2);
    let input = values(&mut ChaCha8Rng::seed_from_u64(3), arch.input.len());
    let mut pipeline = Pipeline::new(&arch, dense_ops(&arch, &params));
    let n = allocations_in(|| {
        pipeline.forward(&input, &mut NoObserver);
    });
    assert_eq!(n, 0, "allocations in one forward pass");
}

#[test]
fn dense_alexnet_forward_allocates_nothing() {
    let model = synthetic_model(7);
    let image = synthetic_image(7, 0);
    let mut net = DenseNetwork::new(&model);
    let n = allocations_in(|| {
        net.forward(&image, &mut NoObserver);
    });
    assert_eq!(n, 0, "allocations in one AlexNet forward pass");
}
