//! Signature checks of one file's events: batch verification under each key a seq falls in, across the cores.

use super::file::Item;
use super::pinning::KeyState;
use crate::event::Envelope;
use crate::keys::{verify_many, verify_threads};
use crate::ledger::quarantine::Reason;
use crate::ledger::verify::{self, KeyCheck};
use ed25519_dalek::VerifyingKey;

/// A signature verdict: fine, or the reason and detail to quarantine the event with.
pub(super) type SigVerdict = Result<(), (Reason, String)>;

/// The signature verdict for every item (Ok for items that are already rejected).
///
/// With a pinned key, the signed events go through ed25519 batch verification
/// (`keys::verify_many`) on every available core: verification is the costly
/// part of an import. A failed batch is re-checked one by one, so the verdict
/// still names each bad event; an unsigned event keeps its own reason.
pub(super) fn check_signatures(
    items: &[Item<'_>],
    key: &KeyState,
    node: &str,
    require: bool,
) -> Vec<SigVerdict> {
    let pinned = match key {
        KeyState::Pinned(k) => k,
        KeyState::Invalid(e) => {
            return items
                .iter()
                .map(|item| match &item.2 {
                    Ok(_) => Err((
                        Reason::BadSignature,
                        format!("node {node} publishes an unusable key: {e}"),
                    )),
                    Err(_) => Ok(()),
                })
                .collect();
        }
        KeyState::Unknown | KeyState::Untrusted => {
            return items
                .iter()
                .map(|item| match &item.2 {
                    Ok(env) => verify::check_signature(env, KeyCheck::Unknown { require }),
                    Err(_) => Ok(()),
                })
                .collect();
        }
    };
    let mut verdicts: Vec<SigVerdict> = vec![Ok(()); items.len()];
    // Signed events grouped by the key their seq falls under: one group unless
    // the node rotated its key within this file.
    let mut groups: Vec<(&VerifyingKey, Vec<&Envelope>, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Ok(env) = &item.2 else { continue };
        let key = pinned.for_seq(env.seq);
        if env.sig.is_none() {
            // The same verdict and wording as a one-by-one check.
            verdicts[i] = verify::check_signature(env, KeyCheck::Pinned(key));
            continue;
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, signed, at)) => {
                signed.push(env);
                at.push(i);
            }
            None => groups.push((key, vec![env], vec![i])),
        }
    }
    for (key, signed, at) in groups {
        for (i, r) in at
            .into_iter()
            .zip(verify_many(&signed, key, verify_threads()))
        {
            verdicts[i] = r.map_err(|e| (Reason::BadSignature, e.to_string()));
        }
    }
    verdicts
}
