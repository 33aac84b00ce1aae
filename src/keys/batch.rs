//! Checking many signatures of one key at once: ed25519 batch verification across the cores.
//!
//! A batch equation costs about half of checking its signatures one by one.
//! Batches have a fixed size, independent of the machine, so whether a file's
//! events pass depends only on the file: every node cuts it the same way. A
//! batch that fails is checked again one signature at a time, so each bad
//! event is named and quarantined alone.

use super::{KeyError, signing_bytes};
use crate::event::Envelope;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// Signatures per batch equation.
pub const VERIFY_BATCH: usize = 64;

/// One event made ready: the bytes it signs and its signature, or why it has none.
type Prepared = Result<(Vec<u8>, Signature), KeyError>;

/// The bytes `env` signs and its signature; an absent or malformed signature is a bad one.
pub(super) fn prepare(env: &Envelope) -> Prepared {
    let bad = || KeyError::BadSignature {
        event_id: env.event_id.clone(),
        node: env.node_id.clone(),
    };
    let Some(sig_hex) = &env.sig else {
        return Err(bad());
    };
    let mut sig = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut sig).map_err(|_| bad())?;
    Ok((signing_bytes(env)?, Signature::from_bytes(&sig)))
}

/// The verdicts of one batch: one equation for the well-formed signatures, then one
/// check each only when that equation fails.
fn verify_chunk(envs: &[&Envelope], public: &VerifyingKey) -> Vec<Result<(), KeyError>> {
    let prepared: Vec<Prepared> = envs.iter().map(|e| prepare(e)).collect();
    let ready: Vec<&(Vec<u8>, Signature)> =
        prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
    let msgs: Vec<&[u8]> = ready.iter().map(|(m, _)| m.as_slice()).collect();
    let sigs: Vec<Signature> = ready.iter().map(|(_, s)| *s).collect();
    let keys = vec![*public; ready.len()];
    let all_good = ready.is_empty() || ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok();
    prepared
        .into_iter()
        .zip(envs)
        .map(|(p, env)| {
            let (msg, sig) = p?;
            if all_good || public.verify(&msg, &sig).is_ok() {
                Ok(())
            } else {
                Err(KeyError::BadSignature {
                    event_id: env.event_id.clone(),
                    node: env.node_id.clone(),
                })
            }
        })
        .collect()
}

/// Verifies the signatures of events that all claim `public`'s node, in input order.
///
/// Batches of [`VERIFY_BATCH`] are spread over `threads` scoped threads (one
/// contiguous run of batches each). An event without a signature, or with one
/// that is not 128 hex digits, fails like a wrong signature.
pub fn verify_many(
    envs: &[&Envelope],
    public: &VerifyingKey,
    threads: usize,
) -> Vec<Result<(), KeyError>> {
    let batches = envs.len().div_ceil(VERIFY_BATCH);
    let threads = threads.clamp(1, batches.max(1));
    if threads == 1 {
        return envs
            .chunks(VERIFY_BATCH)
            .flat_map(|c| verify_chunk(c, public))
            .collect();
    }
    let per_thread = batches.div_ceil(threads) * VERIFY_BATCH;
    std::thread::scope(|s| {
        let handles: Vec<_> = envs
            .chunks(per_thread)
            .map(|run| {
                s.spawn(move || {
                    run.chunks(VERIFY_BATCH)
                        .flat_map(|c| verify_chunk(c, public))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}

/// Cores to verify on: what the system offers (1 when it cannot say).
pub fn verify_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
