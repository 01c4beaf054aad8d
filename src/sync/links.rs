//! What the sync engine remembers between runs, behind [`SyncStore`] (SQLite in the vault's
//! database: `store::SqliteSync`; a PostgreSQL back end for teams slots in behind the same
//! trait): the link table, each side's checkpoint, the records that failed, the creates sent but
//! not yet linked, and each run's counts.

use crate::runs::StoreError;

/// A pair: the record on side A, its pair on side B, and the hash of the mapped fields the two
/// held when last made equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Side A's record id.
    pub a_id: String,
    /// Side B's record id.
    pub b_id: String,
    /// Hash of the mapped fields (see `engine::canonical`).
    pub hash: String,
}

/// The hash of a link left by `deletes = "unlink"`: the record that stayed is no longer synced
/// (its changes are not carried, and it is not created again on the side it was deleted from).
/// Not counted as a pair.
pub const UNLINKED: &str = "unlinked";

/// A side of a sync: `a` or `b` (a side's name may change, its place does not).
pub type SideKey = &'static str;

/// What one page of a direction makes permanent, in one transaction: the links made or changed,
/// the records that failed (retried next run) and those that no longer fail, the creates that
/// were answered, and the source side's checkpoint moved past the page.
#[derive(Debug, Default)]
pub struct Commit {
    /// Links made or whose hash changed.
    pub links: Vec<Link>,
    /// Links dropped (by side A's id).
    pub unlinked: Vec<String>,
    /// (side, record id, the API's message).
    pub failed: Vec<(SideKey, String, String)>,
    /// (side, record id) that went through this time.
    pub fixed: Vec<(SideKey, String)>,
    /// (side, source record id) of creates answered.
    pub intents_done: Vec<(SideKey, String)>,
    /// (side, value).
    pub checkpoint: Option<(SideKey, String)>,
}

/// One sync run's record, for `sync status` and the console.
#[derive(Debug, Clone)]
pub struct SyncRunRecord {
    /// The run id (as in `linkrun runs`).
    pub run_id: String,
    /// The sync.
    pub sync: String,
    /// Milliseconds since the epoch.
    pub started_ms: i64,
    /// When it ended.
    pub ended_ms: Option<i64>,
    /// `running`, `ok`, `failed`.
    pub status: String,
    /// The run's stats (the `objects` document of `sync run --json`, and `purchase_orders`).
    pub stats: serde_json::Value,
}

/// The sync engine's store.
pub trait SyncStore {
    /// The links of these side-A ids.
    fn links_by_a(&self, sync: &str, object: &str, ids: &[String]) -> Result<Vec<Link>, StoreError>;
    /// The links of these side-B ids.
    fn links_by_b(&self, sync: &str, object: &str, ids: &[String]) -> Result<Vec<Link>, StoreError>;
    /// A side's checkpoint.
    fn checkpoint(&self, sync: &str, object: &str, side: SideKey) -> Result<Option<String>, StoreError>;
    /// The records of a side that failed in earlier runs: (id, message).
    fn failures(&self, sync: &str, object: &str, side: SideKey) -> Result<Vec<(String, String)>, StoreError>;
    /// Source records of a side whose create on the other side was sent and never answered.
    fn intents(&self, sync: &str, object: &str, side: SideKey) -> Result<Vec<String>, StoreError>;
    /// Records, before the call, the creates about to be sent for these source records.
    fn record_intents(&self, sync: &str, object: &str, side: SideKey, ids: &[String]) -> Result<(), StoreError>;
    /// Makes a page's outcome permanent, in one transaction.
    fn commit(&self, sync: &str, object: &str, c: &Commit) -> Result<(), StoreError>;
    /// Records a run's start.
    fn begin_run(&self, run_id: &str, sync: &str, started_ms: i64) -> Result<(), StoreError>;
    /// Records a run's end and counts.
    fn end_run(&self, run_id: &str, status: &str, stats: &serde_json::Value, ended_ms: i64) -> Result<(), StoreError>;
    /// The latest runs of a sync, newest first.
    fn runs(&self, sync: &str, limit: usize) -> Result<Vec<SyncRunRecord>, StoreError>;
    /// Forgets a sync's links, checkpoints, failures and intents (not its run history); returns
    /// the links forgotten.
    fn reset(&self, sync: &str) -> Result<u64, StoreError>;
    /// How many links a sync has.
    fn link_count(&self, sync: &str) -> Result<u64, StoreError>;
}
