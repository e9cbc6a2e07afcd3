use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

fn links(count: usize) -> Vec<Link> {
    vec![Link::default(); count]
}

#[test]
fn a_range_splits_into_aligned_blocks_and_merges_back() {
    let mut table = links(64);
    let mut buddy = Buddy::new(&mut table, 0);
    assert_eq!(buddy.add_free_range(3, 13), 13);
    // 3, 4..8, 8..16: blocks of 1, 4 and 8 frames.
    assert_eq!(buddy.free_blocks()[0], 1);
    assert_eq!(buddy.free_blocks()[2], 1);
    assert_eq!(buddy.free_blocks()[3], 1);
    assert_eq!(buddy.free_frames(), 13);
    let frame = buddy.allocate(0, 0).expect("a frame");
    assert_eq!(frame, 3);
    assert_eq!(buddy.allocated_order(3), Some(0));
    assert_eq!(buddy.free(3), Ok(0));
    assert_eq!(buddy.free(3), Err(FreeError::NotAllocated));
    // Adding the missing frames lets everything merge into one block.
    assert_eq!(buddy.add_free_range(0, 3), 3);
    assert_eq!(buddy.free_blocks()[4], 1);
    assert_eq!(buddy.free_frames(), 16);
}

#[test]
fn allocation_splits_larger_blocks() {
    let mut table = links(16);
    let mut buddy = Buddy::new(&mut table, 1000);
    buddy.add_free_range(1000, 16);
    let one = buddy.allocate(0, 0).expect("a frame");
    let two = buddy.allocate(1, 0).expect("two frames");
    assert_eq!(one, 1000);
    assert_eq!(two, 1002);
    assert_eq!(buddy.free_frames(), 13);
    assert_eq!(buddy.free(two), Ok(1));
    assert_eq!(buddy.free(one), Ok(0));
    assert_eq!(buddy.free_blocks()[4], 1);
}

#[test]
fn a_reserve_is_kept_free() {
    let mut table = links(8);
    let mut buddy = Buddy::new(&mut table, 0);
    buddy.add_free_range(0, 8);
    assert!(buddy.allocate(2, 4).is_some());
    assert!(buddy.allocate(0, 4).is_none(), "four frames are left and four are kept");
    assert!(buddy.allocate(0, 0).is_some());
    assert!(buddy.allocate(ORDER_COUNT, 0).is_none());
}

#[test]
fn frames_outside_the_table_are_not_taken() {
    let mut table = links(8);
    let mut buddy = Buddy::new(&mut table, 8);
    assert_eq!(buddy.add_free_range(0, 100), 8);
    assert_eq!(buddy.free(0), Err(FreeError::NotAllocated));
    assert_eq!(buddy.free(u64::MAX), Err(FreeError::NotAllocated));
    assert_eq!(buddy.allocated_order(u64::MAX), None);
}

proptest! {
    /// Any sequence of allocations and frees hands out disjoint blocks
    /// within the free ranges, and freeing everything restores the start.
    #[test]
    fn blocks_never_overlap(
        operations in proptest::collection::vec((0usize..5, any::<bool>(), any::<prop::sample::Index>()), 1..200)
    ) {
        let mut table = links(256);
        let mut buddy = Buddy::new(&mut table, 0);
        buddy.add_free_range(5, 200);
        let initial = buddy.free_blocks();
        let mut owned = vec![false; 256];
        let mut blocks: Vec<(u64, usize)> = Vec::new();
        for (order, is_free, pick) in operations {
            if is_free && !blocks.is_empty() {
                let (frame, order) = blocks.swap_remove(pick.index(blocks.len()));
                prop_assert_eq!(buddy.free(frame), Ok(order));
                for index in frame..frame + (1 << order) {
                    owned[index as usize] = false;
                }
            } else if let Some(frame) = buddy.allocate(order, 0) {
                prop_assert!(frame.is_multiple_of(1 << order));
                for index in frame..frame + (1 << order) {
                    prop_assert!((5..205).contains(&index));
                    prop_assert!(!owned[index as usize], "frame {} handed out twice", index);
                    owned[index as usize] = true;
                }
                blocks.push((frame, order));
            }
            let held: u64 = blocks.iter().map(|(_, order)| 1u64 << order).sum();
            prop_assert_eq!(buddy.free_frames() + held, 200);
        }
        for (frame, _) in blocks {
            prop_assert!(buddy.free(frame).is_ok());
        }
        prop_assert_eq!(buddy.free_blocks(), initial);
    }
}
