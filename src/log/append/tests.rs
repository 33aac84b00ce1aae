use super::*;
use crate::log::testutil::env;

/// A batch of n1's seq 4, a peer's event at `peer_seq`, then n1's `next_seq`.
fn batch(peer_seq: u64, next_seq: u64) -> [Envelope; 3] {
    [
        env("n1", 4, "", 1),
        env("peer", peer_seq, "", 2),
        env("n1", next_seq, "", 3),
    ]
}

#[test]
fn own_events_continuing_the_chain_pass_and_peer_events_are_ignored() {
    let batch = batch(99, 5);
    assert!(sequence_gap(&batch, "n1", 3).is_none());
    // Only peer events: nothing to check, whatever their seqs.
    assert!(sequence_gap(&batch[1..2], "n1", 0).is_none());
}

#[test]
fn the_first_own_event_off_the_chain_is_named_with_the_seq_it_needed() {
    let batch = batch(1, 6);
    let (bad, expected) = sequence_gap(&batch, "n1", 3).unwrap();
    assert_eq!(
        (&bad.event_id, bad.seq, expected),
        (&batch[2].event_id, 6, 5)
    );
    // A repeat of the last own seq is a gap too.
    let (bad, expected) = sequence_gap(&batch[..1], "n1", 4).unwrap();
    assert_eq!((&bad.event_id, expected), (&batch[0].event_id, 5));
}
