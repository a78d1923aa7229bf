//! Group commit: the one thread that writes submissions. Connections hand it jobs; it
//! takes every job waiting (up to a batch cap), stores them in one transaction with one
//! fsync ([`Store::submit_batch`]), and only then answers each. While one batch commits,
//! the next one gathers, so 16 concurrent senders share fsyncs instead of queueing for one
//! each.
//!
//! Messages released for delivery at once (`DeliverNow`, claimed in state `sending` by
//! the store) go straight to the delivery side, without a poll of the queue.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;

use mailguard_store::{
    now, Action, Admission, Claimed, Entry, Origin, SpamSummary, Store, Submission,
};

use super::accounts::Policy;

/// The most jobs in one transaction, and the most message bytes.
const BATCH_MAX: usize = 256;
const BATCH_BYTES: usize = 64 << 20;

/// Where a job stands, shared by the connection that waits for it and the commit thread,
/// so that a connection that stops waiting never answers "refused" for a message that is
/// stored after all: it may give up only while the job is still `WAITING`.
#[derive(Clone, Default)]
pub struct Ticket(Arc<AtomicU8>);

const WAITING: u8 = 0;
const TAKEN: u8 = 1;
const GIVEN_UP: u8 = 2;

impl Ticket {
    /// The commit thread takes the job into a batch (false: its connection gave up).
    fn take(&self) -> bool {
        self.0
            .compare_exchange(WAITING, TAKEN, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The connection stops waiting (false: the job is in a batch; wait for its answer).
    pub fn give_up(&self) -> bool {
        self.0
            .compare_exchange(WAITING, GIVEN_UP, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// One checked message waiting to be stored.
pub struct Job {
    pub policy: Policy,
    pub raw: Vec<u8>,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub origin: Origin,
    pub spam: Option<SpamSummary>,
    /// Where the answer goes: the store's admission, or the store's error in words.
    pub reply: SyncSender<Result<Admission, String>>,
    pub ticket: Ticket,
}

/// Runs until every sender of `jobs` is gone.
pub fn run(mut store: Store, jobs: Receiver<Job>, released: Sender<Claimed>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            // A job whose connection gave up is dropped: its caller was told "refused".
            if job.ticket.take() {
                bytes += job.raw.len();
                batch.push(job);
            }
            if batch.len() < BATCH_MAX && bytes < BATCH_BYTES {
                next = jobs.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit(&mut store, batch, &released);
        }
    }
}

fn commit(store: &mut Store, batch: Vec<Job>, released: &Sender<Claimed>) {
    let entries: Vec<Entry<'_>> = batch
        .iter()
        .map(|j| Entry {
            account: &j.policy.account,
            limits: &j.policy.limits,
            mode: j.policy.mode,
            sub: Submission {
                raw: &j.raw,
                envelope_from: &j.envelope_from,
                recipients: &j.recipients,
                origin: &j.origin,
                spam: j.spam.as_ref(),
            },
        })
        .collect();
    let results = store.submit_batch(&entries, now());
    drop(entries);
    match results {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                let deliver_now = match &result {
                    Ok(a) if a.action == Action::DeliverNow => a.id,
                    _ => None,
                };
                let _ = job.reply.send(result.map_err(|e| e.to_string()));
                if let Some(id) = deliver_now {
                    let _ = released.send(Claimed {
                        id,
                        account: job.policy.account,
                        envelope_from: job.envelope_from,
                        recipients: job.recipients,
                        raw: job.raw,
                        attempts: 0,
                    });
                }
            }
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "mailguard serve: a batch of {} message(s) could not be stored: {text}",
                batch.len()
            );
            for job in batch {
                let _ = job.reply.send(Err(text.clone()));
            }
        }
    }
}
