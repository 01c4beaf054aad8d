//! Group commit of run records: the writes of concurrent runs — webhooks accepted, runs ended —
//! go to one thread that commits whatever is waiting in one transaction, so that under load many
//! runs share a commit instead of paying one each. A write is answered only once its transaction
//! has committed, so nothing is acknowledged that a crash could lose.
//!
//! The answer is a callback run on the writer's thread right after the commit ([`Done`]): an
//! accepted webhook's job goes from there straight onto the workers' queue, and a sync run's HTTP
//! answer straight to its waiting request, so neither the request's task nor the worker waits
//! (and is woken) in between. Callbacks must be quick and must not block: they hand over, they do
//! not work.

use std::sync::mpsc::{Receiver, Sender};

use serde_json::Value;

use crate::runs::{Accept, Accepted, BatchOp, NewRun, RunEnd, RunQueue, RunStatus, StoreError};
use crate::store::SqliteRuns;

/// Writes waiting in one transaction at most.
const MAX_BATCH: usize = 256;

/// An accepted run, owned (the writer thread builds the store's borrowed [`Accept`] from it).
pub(crate) struct OwnedAccept {
    pub id: String,
    pub run: NewRun,
    pub status: RunStatus,
    pub owner: String,
    pub sealed: Option<Vec<u8>>,
    pub dedupe: Option<(String, i64)>,
}

/// What runs once a write has committed (or failed), on the writer's thread.
pub(crate) type Done<T> = Box<dyn FnOnce(Result<T, String>) + Send>;

enum Msg {
    Accept(OwnedAccept, Done<Accepted>),
    Finish(String, RunEnd, Option<Value>, Done<()>),
    /// Answered after every write sent before it has committed.
    Flush(Done<()>),
}

const STOPPED: &str = "the run records' writer has stopped";

/// The writer's handle.
pub(crate) struct Recorder {
    tx: std::sync::Mutex<Option<Sender<Msg>>>,
}

impl Recorder {
    /// Starts the writer thread on its own connection to the store.
    pub fn start(store: SqliteRuns) -> std::io::Result<Recorder> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("linkrun-recorder".into()).spawn(move || write(store, rx))?;
        Ok(Recorder { tx: std::sync::Mutex::new(Some(tx)) })
    }

    /// Sends `m`; when the writer has stopped, hands it back.
    fn send(&self, m: Msg) -> Option<Msg> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref() {
            Some(t) => t.send(m).err().map(|e| e.0),
            None => Some(m),
        }
    }

    /// Records an accepted run; `done` runs once it has committed.
    pub fn accept(&self, a: OwnedAccept, done: Done<Accepted>) {
        if let Some(Msg::Accept(_, done)) = self.send(Msg::Accept(a, done)) {
            done(Err(STOPPED.into()));
        }
    }

    /// Records how a run ended; `done` runs once it has committed.
    pub fn finish(&self, id: &str, end: RunEnd, response: Option<Value>, done: Done<()>) {
        if let Some(Msg::Finish(.., done)) = self.send(Msg::Finish(id.to_string(), end, response, done)) {
            done(Err(STOPPED.into()));
        }
    }

    /// Returns once every write sent before has committed (at shutdown, so that no run's end is
    /// still waiting in the queue when the process exits).
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let done: Done<()> = Box::new(move |r| {
            let _ = tx.send(r);
        });
        if self.send(Msg::Flush(done)).is_none() {
            let _ = rx.recv();
        }
    }
}

fn drain(rx: &Receiver<Msg>, msgs: &mut Vec<Msg>) {
    while msgs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(m) => msgs.push(m),
            Err(_) => break,
        }
    }
}

fn write(store: SqliteRuns, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        drain(&rx, &mut msgs);
        let mut ops: Vec<BatchOp<'_>> = msgs
            .iter()
            .filter_map(|m| match m {
                Msg::Accept(a, _) => Some(BatchOp::Accept(
                    Accept {
                        id: &a.id,
                        run: &a.run,
                        status: a.status,
                        owner: &a.owner,
                        sealed_input: a.sealed.as_deref(),
                        dedupe: a.dedupe.as_ref().map(|(k, w)| (k.as_str(), *w)),
                        retry_of: None,
                        mark: None,
                    },
                    None,
                )),
                Msg::Finish(id, end, response, _) => {
                    Some(BatchOp::Finish { id, end, response: response.as_ref(), out: None })
                }
                Msg::Flush(_) => None,
            })
            .collect();
        let whole = if ops.is_empty() { Ok(()) } else { store.batch(&mut ops).map_err(|e: StoreError| e.to_string()) };
        let results: Vec<Result<Option<Accepted>, String>> = ops
            .into_iter()
            .map(|op| {
                let one = match op {
                    BatchOp::Accept(_, out) => out.map(|r| r.map(Some).map_err(|e| e.to_string())),
                    BatchOp::Finish { out, .. } => out.map(|r| r.map(|_| None).map_err(|e| e.to_string())),
                };
                match (&whole, one) {
                    (Err(e), _) => Err(e.clone()),
                    (Ok(()), Some(r)) => r,
                    (Ok(()), None) => Err("not written".into()),
                }
            })
            .collect();
        let mut results = results.into_iter();
        let mut next = || results.next().unwrap_or_else(|| Err("not written".into()));
        for m in msgs {
            match m {
                Msg::Accept(_, done) => done(next().and_then(|a| a.ok_or_else(|| "not written".to_string()))),
                Msg::Finish(.., done) => done(next().map(|_| ())),
                Msg::Flush(done) => done(Ok(())),
            }
        }
    }
}
