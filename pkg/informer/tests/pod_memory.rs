//! What one pod costs in the shared pod informer, counted by a counting allocator: the
//! pruned pod must stay well under the pod as decoded (without its managedFields).

// A global allocator is an unsafe trait; this one only counts, in this test binary alone.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use k8s_openapi::api::core::v1::Pod;

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

const PODS: isize = 200;

/// Bytes per pod (its struct and heap) of `PODS` decoded workload pods after `prune`.
fn bytes_per_pod(prune: fn(&mut Pod)) -> isize {
    let json = include_str!("../testdata/workload_pod.json");
    let before = LIVE.load(Ordering::Relaxed);
    let pods: Vec<Box<Pod>> = (0..PODS)
        .map(|_| {
            let mut pod = Box::new(serde_json::from_str::<Pod>(json).expect("a pod"));
            prune(&mut pod);
            pod
        })
        .collect();
    let used = LIVE.load(Ordering::Relaxed) - before;
    drop(pods);
    used / PODS
}

#[test]
fn a_pruned_workload_pod_takes_under_half_of_a_decoded_one() {
    let decoded = bytes_per_pod(k1s_informer::drop_managed_fields::<Pod>);
    let pruned = bytes_per_pod(k1s_informer::slim_pod);
    println!("per pod: {decoded} bytes decoded without managedFields, {pruned} pruned");
    assert!(
        pruned * 2 < decoded,
        "{pruned} bytes pruned, {decoded} decoded"
    );
}
