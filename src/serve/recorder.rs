//! Group commit of run records: the writes of concurrent runs — webhooks accepted, runs ended —
//! go to one thread that commits whatever is waiting in one transaction, so that under load many
//! runs share a commit instead of paying one each. A write is answered only once its transaction
//! has committed, so nothing is acknowledged that a crash could lose.

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

enum Msg {
    Accept(OwnedAccept, tokio::sync::oneshot::Sender<Result<Accepted, String>>),
    Finish(String, RunEnd, Option<Value>, std::sync::mpsc::Sender<Result<(), String>>),
}

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

    fn send(&self, m: Msg) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.as_ref().is_some_and(|t| t.send(m).is_ok())
    }

    /// Records an accepted run; resolves once committed.
    pub async fn accept(&self, a: OwnedAccept) -> Result<Accepted, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.send(Msg::Accept(a, tx)) {
            return Err("the run records' writer has stopped".into());
        }
        rx.await.unwrap_or_else(|_| Err("the run records' writer has stopped".into()))
    }

    /// Records how a run ended; returns once committed.
    pub fn finish(&self, id: &str, end: RunEnd, response: Option<Value>) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        if !self.send(Msg::Finish(id.to_string(), end, response, tx)) {
            return Err("the run records' writer has stopped".into());
        }
        rx.recv().unwrap_or_else(|_| Err("the run records' writer has stopped".into()))
    }
}

fn write(store: SqliteRuns, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while msgs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut ops: Vec<BatchOp<'_>> = msgs
            .iter()
            .map(|m| match m {
                Msg::Accept(a, _) => BatchOp::Accept(
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
                ),
                Msg::Finish(id, end, response, _) => {
                    BatchOp::Finish { id, end, response: response.as_ref(), out: None }
                }
            })
            .collect();
        let whole = store.batch(&mut ops).map_err(|e: StoreError| e.to_string());
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
        for (m, r) in msgs.into_iter().zip(results) {
            match m {
                Msg::Accept(_, reply) => {
                    let _ = reply.send(r.and_then(|a| a.ok_or_else(|| "not written".to_string())));
                }
                Msg::Finish(.., reply) => {
                    let _ = reply.send(r.map(|_| ()));
                }
            }
        }
    }
}
