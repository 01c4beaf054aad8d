//! The engine: one loop for every pair of sides. A direction (from one side to the other) reads
//! the source's change feed page by page from its checkpoint, and for each page:
//!
//! 1. maps each record into the target's terms and hashes the mapped fields
//!    ([`Mapper::canonical`]; a `lookup` field's id becomes its pair's, through another sync's links);
//! 2. looks its link up: a linked record whose hash is the link's was not changed since the pair
//!    was last made equal — a change linkrun made itself comes back as exactly that — and is
//!    left alone (no echo, no ping-pong);
//! 3. a linked record that changed is written to its pair, unless (both ways) the pair changed
//!    too since then: a conflict, settled by the sync's rule (the losing side's value is written
//!    by the other direction, whose pass sees the same conflict);
//! 4. an unlinked record is paired by match key with a record already on the target (both ways),
//!    else created: CRM creates are upserts on the key, ServiceNow ones are recorded as intents
//!    before the POST and found by key after a crash;
//! 5. commits the page's links, failures and the source's checkpoint in one transaction, after
//!    its writes, so a kill at any moment loses nothing (the page is read again: its records are
//!    unchanged or matched) and duplicates nothing.
//!
//! Both APIs stamp changes to the second: a checkpoint's own second is read again, and the hashes
//! make that re-read free of writes. A record that failed is kept with the API's message and
//! read again by id on the next run.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::def::{Conflict, Deletes, Normalize, SyncDef, SyncType};
use super::links::{Commit, Link, SideKey, SyncStore};
use super::sides::{Rec, Side};

/// The counts of one direction of one object.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Records read from the source (change feed and retried failures).
    pub read: u64,
    /// Records created on the target.
    pub created: u64,
    /// Records updated on the target (or paired with one that was already equal).
    pub updated: u64,
    /// Records read that needed nothing (unchanged since the last sync, or equal already).
    pub unchanged: u64,
    /// Records changed on both sides, settled by the conflict rule in this direction.
    pub conflicts: u64,
    /// Records that could not be written (kept, retried on the next run).
    pub failed: u64,
    /// Records deleted on the source whose pair was deleted too (`deletes = "propagate"`) or
    /// unpaired (`"unlink"`).
    pub deleted: u64,
    /// API calls made by this direction, on both sides (token requests not included).
    pub api_calls: u64,
}

/// How a run goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    /// Read everything, not only what changed since the checkpoints.
    pub full: bool,
    /// Decide, count, write nothing, move no checkpoint.
    pub dry_run: bool,
}

/// The failures seen by a run: (direction, source id, message), the first few.
pub type FailureList = Vec<(String, String, String)>;

/// Told after each page: the direction and its counts so far (a progress bar).
pub type Progress<'p> = &'p dyn Fn(&str, &Counts);

/// One direction's work.
struct Pass<'s, 'a> {
    def: &'s SyncDef,
    store: &'s dyn SyncStore,
    map: &'s Mapper<'s>,
    flags: RunFlags,
    from_a: bool,
    src: &'s mut Box<dyn Side + 'a>,
    dst: &'s mut Box<dyn Side + 'a>,
    counts: Counts,
    failures: FailureList,
    /// The last records written from side A (`[recent]` columns), oldest first.
    recent: Vec<Value>,
    progress: Progress<'s>,
}

/// Records kept of the last written (`[recent]`).
const RECENT: usize = 20;

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn normalized(n: Option<Normalize>, v: &str) -> String {
    let v = v.trim();
    match n {
        None => v.to_string(),
        Some(Normalize::Lower) => v.to_lowercase(),
        Some(Normalize::Phone) => {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            if v.starts_with('+') { format!("+{digits}") } else { digits }
        }
        Some(Normalize::Date) => v.get(..10).unwrap_or(v).to_string(),
        Some(Normalize::Number) => match v.parse::<f64>() {
            Ok(n) if n.is_finite() => format!("{n}"),
            _ => v.to_string(),
        },
    }
}

/// Where a lookup field's ids are translated (`lookup = "<sync>"`): the links of another sync
/// between the same two sides, whose side A is this sync's side A (`same`) or its side B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupLinks {
    /// The other sync.
    pub sync: String,
    /// What its links are kept under (`SyncDef::links_key`).
    pub object: String,
    /// Whether its side A is this sync's side A.
    pub same: bool,
}

/// The text a lookup whose id has no pair in its sync's links carries: it never equals a real
/// value (so the record is not taken as unchanged), and its payload fails.
const UNRESOLVED: &str = "\u{0}unresolved:";

/// Maps records between the sides: the field map's values, defaults, value maps and lookups.
pub struct Mapper<'s> {
    def: &'s SyncDef,
    store: &'s dyn SyncStore,
    /// Per field of the map: the links its ids are translated through.
    lookups: Vec<Option<LookupLinks>>,
    /// (field, from A, id) → the pair's id, as looked up.
    cache: std::cell::RefCell<HashMap<(usize, bool, String), Option<String>>>,
}

impl<'s> Mapper<'s> {
    /// A mapper for `def`; `lookups`: per field, the links a `lookup` field translates through.
    pub fn new(def: &'s SyncDef, store: &'s dyn SyncStore, lookups: Vec<Option<LookupLinks>>) -> Mapper<'s> {
        Mapper { def, store, lookups, cache: Default::default() }
    }

    /// The id on the other side of `id` (of side A when `from_a`) in field `i`'s lookup sync.
    fn translate(&self, i: usize, from_a: bool, id: &str) -> Result<Option<String>, String> {
        let Some(Some(l)) = self.lookups.get(i) else { return Ok(Some(id.to_string())) };
        let key = (i, from_a, id.to_string());
        if let Some(hit) = self.cache.borrow().get(&key) {
            return Ok(hit.clone());
        }
        let ids = [id.to_string()];
        // The other sync's side holding `id`: its A when that is this one's source side.
        let by_a = from_a == l.same;
        let found = if by_a {
            self.store.links_by_a(&l.sync, &l.object, &ids)
        } else {
            self.store.links_by_b(&l.sync, &l.object, &ids)
        }
        .map_err(|e| e.to_string())?;
        let pair = found.into_iter().next().map(|k| if by_a { k.b_id } else { k.a_id });
        self.cache.borrow_mut().insert(key, pair.clone());
        Ok(pair)
    }

    /// The value field `i` of a record of side A (`from_a`) or B gets on the other side: the
    /// source value, the default when empty, the value map applied (A→B, or reversed for B→A),
    /// a lookup's id translated (or [`UNRESOLVED`] and the id when it has no pair yet).
    fn carried(&self, i: usize, rec: &Rec, from_a: bool) -> String {
        let f = &self.def.fields[i];
        let name = if from_a { &f.a } else { &f.b };
        let raw = text(if f.display { rec.display.get(name).or(rec.fields.get(name)) } else { rec.fields.get(name) });
        let raw = if raw.trim().is_empty() { f.default.clone().unwrap_or_default() } else { raw };
        if f.lookup.is_some() {
            if raw.trim().is_empty() {
                return String::new();
            }
            return match self.translate(i, from_a, raw.trim()) {
                Ok(Some(id)) => id,
                _ => format!("{UNRESOLVED}{raw}"),
            };
        }
        let mapped = if from_a {
            f.values.iter().find(|(a, _)| *a == raw).map(|(_, b)| b.clone())
        } else {
            f.values.iter().find(|(_, b)| *b == raw).map(|(a, _)| a.clone())
        };
        mapped.unwrap_or(raw)
    }

    /// The match key's value of a record, in the other side's terms.
    fn key_value(&self, rec: &Rec, from_a: bool) -> Option<(usize, String)> {
        let i = self.def.fields.iter().position(|f| f.key)?;
        Some((i, self.carried(i, rec, from_a)))
    }

    /// The record's mapped fields in side B's terms, normalised: what both sides hold when equal.
    pub fn canonical(&self, rec: &Rec, is_a: bool) -> Vec<String> {
        self.def
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let v = if is_a {
                    self.carried(i, rec, true)
                } else {
                    let raw = text(rec.fields.get(&f.b));
                    if raw.trim().is_empty() { f.default.clone().unwrap_or_default() } else { raw }
                };
                normalized(f.normalize, &v)
            })
            .collect()
    }

    /// The fields written to the other side for a record of side A (`from_a`) or B; `Err` names
    /// a lookup whose record is not synced yet.
    fn payload(&self, rec: &Rec, from_a: bool) -> Result<Map<String, Value>, String> {
        let to_crm = if from_a { self.def.b.kind } else { self.def.a.kind } == super::def::SideKind::Crm;
        let mut m = Map::new();
        for (i, f) in self.def.fields.iter().enumerate() {
            if let Some((ab, ba)) = f.only
                && !(if from_a { ab } else { ba })
            {
                continue;
            }
            let (from, name) = if from_a { (&f.a, &f.b) } else { (&f.b, &f.a) };
            let v = self.carried(i, rec, from_a);
            let value = match &f.lookup {
                Some(sync) => match v.strip_prefix(UNRESOLVED) {
                    Some(id) => {
                        return Err(format!(
                            "`{from}` refers to {id}, which sync `{sync}` has not paired yet: run `linkrun sync run {sync}` (this record is retried on the next run)"
                        ));
                    }
                    None if v.is_empty() => {
                        if to_crm {
                            Value::Null
                        } else {
                            Value::String(v)
                        }
                    }
                    // A CRM lookup is written as `{"id": ...}`; a ServiceNow reference as the sys_id.
                    None if to_crm => serde_json::json!({ "id": v }),
                    None => Value::String(v),
                },
                None => Value::String(v),
            };
            m.insert(name.clone(), value);
        }
        Ok(m)
    }
}

/// A hash of the canonical fields.
pub fn hash(fields: &[String]) -> String {
    use sha2::Digest as _;
    let text = serde_json::to_string(fields).unwrap_or_default();
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the epoch of a change stamp (`2024-05-01 10:00:00` UTC, or RFC 3339).
fn stamp_secs(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc().timestamp()))
}

impl Pass<'_, '_> {
    fn key(&self) -> SideKey {
        if self.from_a { "a" } else { "b" }
    }

    /// The source ids of `side` whose create was begun (an intent kept) and never committed.
    fn open_intents(&self, side: SideKey) -> Result<std::collections::HashSet<String>, String> {
        let (sync, key) = (self.def.name.as_str(), self.def.links_key());
        Ok(self.store.intents(sync, &key, side).map_err(|e| e.to_string())?.into_iter().collect())
    }

    fn fail(&mut self, commit: &mut Commit, id: &str, message: String) {
        self.counts.failed += 1;
        if self.failures.len() < 20 {
            self.failures.push((self.def.direction_name(self.from_a), id.to_string(), message.clone()));
        }
        commit.failed.push((self.key(), id.to_string(), message));
    }

    /// Keeps a written record's `[recent]` columns (display values where the side read them).
    fn note_recent(&mut self, rec: &Rec, action: &str, target_id: &str) {
        if !self.from_a || self.def.recent.is_empty() {
            return;
        }
        let mut m = Map::new();
        for (label, field) in &self.def.recent {
            let v = rec.display.get(field).or(rec.fields.get(field)).cloned().unwrap_or(Value::Null);
            m.insert(label.clone(), v);
        }
        m.insert("action".into(), Value::String(action.into()));
        m.insert("id".into(), Value::String(target_id.into()));
        if self.recent.len() == RECENT {
            self.recent.remove(0);
        }
        self.recent.push(Value::Object(m));
    }

    fn link_of(&self, src_id: &str, dst_id: &str, h: String) -> Link {
        if self.from_a {
            Link { a_id: src_id.to_string(), b_id: dst_id.to_string(), hash: h }
        } else {
            Link { a_id: dst_id.to_string(), b_id: src_id.to_string(), hash: h }
        }
    }

    /// The source wins a conflict with the target record `dst`.
    fn source_wins(&self, src: &Rec, dst: &Rec) -> bool {
        match self.def.conflict {
            Conflict::Wins(a) => a == self.from_a,
            Conflict::Newest => {
                let (s, d) = (stamp_secs(&src.modified), stamp_secs(&dst.modified));
                match (s, d) {
                    (Some(s), Some(d)) if s != d => s > d,
                    // A tie (or an unreadable stamp): side A wins.
                    _ => self.from_a,
                }
            }
        }
    }

    /// Processes one page of source records; `checkpoint`: the value to move the checkpoint to.
    fn page(
        &mut self,
        records: Vec<Rec>,
        checkpoint: Option<String>,
        retried: &HashMap<String, String>,
    ) -> Result<(), String> {
        let def = self.def;
        let (sync, key) = (def.name.as_str(), def.links_key());
        let object = key.as_str();
        self.counts.read += records.len() as u64;
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let links = if self.from_a {
            self.store.links_by_a(sync, object, &ids)
        } else {
            self.store.links_by_b(sync, object, &ids)
        }
        .map_err(|e| e.to_string())?;
        let link_of: HashMap<&str, &Link> =
            links.iter().map(|l| (if self.from_a { l.a_id.as_str() } else { l.b_id.as_str() }, l)).collect();
        let mut commit = Commit::default();
        let both = def.sync_type == SyncType::BothWays;
        let mut changed: Vec<(&Rec, String, &Link)> = Vec::new();
        let mut unlinked: Vec<(&Rec, String)> = Vec::new();
        for r in &records {
            let h = hash(&self.map.canonical(r, self.from_a));
            match link_of.get(r.id.as_str()) {
                // Unlinked after its pair was deleted: not synced any more.
                Some(l) if l.hash == super::links::UNLINKED => self.counts.unchanged += 1,
                Some(l) if l.hash == h => {
                    self.counts.unchanged += 1;
                    if retried.contains_key(&r.id) {
                        commit.fixed.push((self.key(), r.id.clone()));
                    }
                }
                Some(l) => changed.push((r, h, l)),
                None => unlinked.push((r, h)),
            }
        }
        // A record this sync made here from the other side, whose create a crash cut off before
        // the link was kept: its correlation field names the other side's record, which still
        // has its intent open. The other direction pairs the two (see below); this one leaves it.
        let (own, theirs) = if self.from_a { (&def.a, &def.b) } else { (&def.b, &def.a) };
        if let (Some(corr), false) = (&own.correlation, unlinked.is_empty()) {
            let open = self.open_intents(if self.from_a { "b" } else { "a" })?;
            unlinked.retain(|(r, _)| !open.contains(&text(r.fields.get(corr))));
        }
        // Changed records: their pairs, read to see whether they changed too (both ways).
        let batch = self.dst.batch();
        let mut updates: Vec<(&Rec, String, String)> = Vec::new();
        for chunk in changed.chunks(batch) {
            let pairs: HashMap<String, Rec> = if both {
                let dst_ids: Vec<String> =
                    chunk.iter().map(|(_, _, l)| if self.from_a { l.b_id.clone() } else { l.a_id.clone() }).collect();
                self.dst.get(&dst_ids)?.into_iter().map(|r| (r.id.clone(), r)).collect()
            } else {
                HashMap::new()
            };
            for (r, h, l) in chunk {
                let dst_id = if self.from_a { &l.b_id } else { &l.a_id };
                if let Some(d) = pairs.get(dst_id) {
                    let dh = hash(&self.map.canonical(d, !self.from_a));
                    if dh == *h {
                        // Both sides already hold the same values.
                        self.counts.unchanged += 1;
                        commit.links.push(self.link_of(&r.id, dst_id, h.clone()));
                        continue;
                    }
                    if dh != l.hash {
                        if !self.source_wins(r, d) {
                            // The other direction writes the winner over this record.
                            continue;
                        }
                        self.counts.conflicts += 1;
                    }
                }
                updates.push((r, dst_id.clone(), h.clone()));
            }
        }
        // Unlinked records: paired by key with what the target has (both ways), else created.
        let key_field = def.fields.iter().find(|f| f.key);
        let mut creates: Vec<(&Rec, String)> = Vec::new();
        if let (true, Some(k)) = (both, key_field) {
            let key_of = |r: &Rec| self.map.key_value(r, self.from_a).map(|(_, v)| v).unwrap_or_default();
            for chunk in unlinked.chunks(batch) {
                let wanted: Vec<String> =
                    chunk.iter().map(|(r, _)| key_of(r)).filter(|v| !v.trim().is_empty()).collect();
                let dst_field = if self.from_a { &k.b } else { &k.a };
                let found = self.dst.find(dst_field, &wanted)?;
                let mut by_key: HashMap<String, Rec> = HashMap::new();
                for d in found {
                    let kv = normalized(k.normalize, &text(d.fields.get(dst_field)));
                    by_key.entry(kv).or_insert(d);
                }
                for (r, h) in chunk {
                    let kv = normalized(k.normalize, &key_of(r));
                    match by_key.get(&kv).filter(|_| !kv.is_empty()) {
                        Some(d) => {
                            let dh = hash(&self.map.canonical(d, !self.from_a));
                            if dh == *h {
                                self.counts.unchanged += 1;
                                commit.links.push(self.link_of(&r.id, &d.id, h.clone()));
                            } else if self.source_wins(r, d) {
                                updates.push((r, d.id.clone(), h.clone()));
                            } else {
                                // Linked with the target's values as the last equal state, so
                                // the other direction writes them over this record.
                                commit.links.push(self.link_of(
                                    &r.id,
                                    &d.id,
                                    hash(&self.map.canonical(d, !self.from_a)),
                                ));
                            }
                        }
                        None => creates.push((r, h.clone())),
                    }
                }
            }
        } else {
            creates = unlinked;
        }
        // Creates a crash cut off (an intent kept, no link): where the target keeps the source's
        // id in a correlation field, what that run made is found by it and paired, not made
        // twice (a match key the target assigns cannot find it).
        let correlation = &theirs.correlation;
        if let (Some(corr), false) = (correlation, creates.is_empty() || self.flags.dry_run) {
            let open = self.open_intents(self.key())?;
            let cut: Vec<String> =
                creates.iter().filter(|(r, _)| open.contains(&r.id)).map(|(r, _)| r.id.clone()).collect();
            let mut made: HashMap<String, Rec> = HashMap::new();
            for chunk in cut.chunks(batch) {
                for d in self.dst.find(corr, chunk)? {
                    made.entry(text(d.fields.get(corr))).or_insert(d);
                }
            }
            let mut left = Vec::new();
            for (r, h) in creates {
                match made.get(&r.id) {
                    Some(d) => {
                        commit.intents_done.push((self.key(), r.id.clone()));
                        if hash(&self.map.canonical(d, !self.from_a)) == h {
                            self.counts.created += 1;
                            commit.links.push(self.link_of(&r.id, &d.id, h));
                        } else {
                            updates.push((r, d.id.clone(), h));
                        }
                    }
                    None => left.push((r, h)),
                }
            }
            creates = left;
        }
        if !self.flags.dry_run {
            // What each write sends; a record whose payload cannot be made (a lookup not paired
            // yet) fails alone.
            let mut sends: Vec<(&Rec, String, String, Map<String, Value>)> = Vec::new();
            for (r, d, h) in updates {
                match self.map.payload(r, self.from_a) {
                    Ok(p) => sends.push((r, d, h, p)),
                    Err(m) => self.fail(&mut commit, &r.id, m),
                }
            }
            let mut new: Vec<(&Rec, String, Map<String, Value>)> = Vec::new();
            for (r, h) in creates {
                match self.map.payload(r, self.from_a) {
                    Ok(mut p) => {
                        if let Some(corr) = correlation {
                            p.insert(corr.clone(), Value::String(r.id.clone()));
                        }
                        new.push((r, h, p))
                    }
                    Err(m) => self.fail(&mut commit, &r.id, m),
                }
            }
            // Updates, a batch per call.
            for chunk in sends.chunks(batch) {
                let body: Vec<(String, Map<String, Value>)> =
                    chunk.iter().map(|(_, d, _, p)| (d.clone(), p.clone())).collect();
                match self.dst.update(&body) {
                    Ok(results) => {
                        for ((r, d, h, _), res) in chunk.iter().zip(results) {
                            match res {
                                Ok(_) => {
                                    self.counts.updated += 1;
                                    self.note_recent(r, "updated", d);
                                    commit.links.push(self.link_of(&r.id, d, h.clone()));
                                    commit.fixed.push((self.key(), r.id.clone()));
                                }
                                Err(m) => self.fail(&mut commit, &r.id, m),
                            }
                        }
                    }
                    Err(m) => chunk.iter().for_each(|(r, ..)| self.fail(&mut commit, &r.id, m.clone())),
                }
            }
            // Creates: intents first, then the calls.
            let key_name = key_field.map(|k| if self.from_a { k.b.clone() } else { k.a.clone() });
            for chunk in new.chunks(batch) {
                let src_ids: Vec<String> = chunk.iter().map(|(r, ..)| r.id.clone()).collect();
                self.store.record_intents(sync, object, self.key(), &src_ids).map_err(|e| e.to_string())?;
                let body: Vec<Map<String, Value>> = chunk.iter().map(|(.., p)| p.clone()).collect();
                match self.dst.create(&body, key_name.as_deref()) {
                    Ok(results) => {
                        for ((r, h, _), res) in chunk.iter().zip(results) {
                            commit.intents_done.push((self.key(), r.id.clone()));
                            match res {
                                Ok(id) => {
                                    self.counts.created += 1;
                                    self.note_recent(r, "created", &id);
                                    commit.links.push(self.link_of(&r.id, &id, h.clone()));
                                    commit.fixed.push((self.key(), r.id.clone()));
                                }
                                Err(m) => self.fail(&mut commit, &r.id, m),
                            }
                        }
                    }
                    Err(m) => chunk.iter().for_each(|(r, ..)| self.fail(&mut commit, &r.id, m.clone())),
                }
            }
            commit.checkpoint = checkpoint.map(|c| (self.key(), c));
            self.store.commit(sync, object, &commit).map_err(|e| e.to_string())?;
        } else {
            self.counts.updated += updates.len() as u64;
            self.counts.created += creates.len() as u64;
        }
        Ok(())
    }

    /// Carries the source's deletes over (`deletes = "propagate"` or `"unlink"`): the source's
    /// delete feed from its own checkpoint; a linked record's pair is deleted (or left) and the
    /// link forgotten. The checkpoint moves only when every delete went through, so one that
    /// failed is tried again on the next run.
    fn deletes(&mut self) -> Result<(), String> {
        let def = self.def;
        let (sync, key) = (def.name.as_str(), def.links_key());
        let object = key.as_str();
        let side: SideKey = if self.from_a { "a_deleted" } else { "b_deleted" };
        let since = self.store.checkpoint(sync, object, side).map_err(|e| e.to_string())?;
        let gone = self.src.deleted(since.as_deref())?;
        let Some(last) = gone.iter().map(|(_, w)| w.clone()).rfind(|w| !w.is_empty()) else { return Ok(()) };
        let ids: Vec<String> = gone.into_iter().map(|(id, _)| id).collect();
        let mut all_went = true;
        for chunk in ids.chunks(self.dst.batch()) {
            let links = if self.from_a {
                self.store.links_by_a(sync, object, chunk)
            } else {
                self.store.links_by_b(sync, object, chunk)
            }
            .map_err(|e| e.to_string())?;
            if links.is_empty() {
                continue;
            }
            if self.flags.dry_run {
                self.counts.deleted += links.len() as u64;
                continue;
            }
            let mut commit = Commit::default();
            if def.deletes == Deletes::Unlink {
                // The link stays as a tombstone, so the record that stayed is not synced (nor
                // created again where it was deleted) when it changes later.
                for l in links.iter().filter(|l| l.hash != super::links::UNLINKED) {
                    self.counts.deleted += 1;
                    commit.links.push(Link { hash: super::links::UNLINKED.to_string(), ..l.clone() });
                }
            } else {
                let pairs: Vec<String> =
                    links.iter().map(|l| if self.from_a { l.b_id.clone() } else { l.a_id.clone() }).collect();
                let results = self.dst.delete(&pairs)?;
                for (l, r) in links.iter().zip(results) {
                    match r {
                        Ok(_) => {
                            self.counts.deleted += 1;
                            commit.unlinked.push(l.a_id.clone());
                        }
                        Err(m) => {
                            all_went = false;
                            self.counts.failed += 1;
                            let src_id = if self.from_a { &l.a_id } else { &l.b_id };
                            if self.failures.len() < 20 {
                                let d = def.direction_name(self.from_a);
                                self.failures.push((d, src_id.clone(), format!("deleting its pair: {m}")));
                            }
                        }
                    }
                }
            }
            self.store.commit(sync, object, &commit).map_err(|e| e.to_string())?;
        }
        if all_went && !self.flags.dry_run {
            let commit = Commit { checkpoint: Some((side, last)), ..Default::default() };
            self.store.commit(sync, object, &commit).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), String> {
        let def = self.def;
        let (sync, key) = (def.name.as_str(), def.links_key());
        let object = key.as_str();
        let before = self.src.calls() + self.dst.calls();
        // Records that failed last time, read again by id.
        let retried: HashMap<String, String> =
            self.store.failures(sync, object, self.key()).map_err(|e| e.to_string())?.into_iter().collect();
        let ids: Vec<String> = retried.keys().cloned().collect();
        for chunk in ids.chunks(self.src.batch()) {
            let recs = self.src.get(chunk)?;
            self.page(recs, None, &retried)?;
        }
        let since = if self.flags.full {
            None
        } else {
            self.store.checkpoint(sync, object, self.key()).map_err(|e| e.to_string())?
        };
        let mut cursor = None;
        // The last change read so far: an empty last page (the one after a full page) still
        // tells that the feed has ended, and when, so the mark below applies to it.
        let mut seen: Option<String> = None;
        loop {
            let page = self.src.changed(since.as_deref(), &mut cursor)?;
            let more = page.more;
            if let Some(m) = page.records.iter().map(|r| &r.modified).rfind(|m| !m.is_empty()) {
                seen = Some(m.clone());
            }
            let last = seen.clone().map(|m| {
                // The feed's end, read two seconds or more after the last change's second began
                // (by the server's clock): that second is over, every change stamped with it has
                // been read, and the next run starts strictly after it. Else it reads it again.
                match (more, stamp_secs(&m), page.server_secs) {
                    (false, Some(s), Some(now)) if now >= s + 2 => format!("{m}{}", super::sides::SECOND_DONE),
                    _ => m,
                }
            });
            self.page(page.records, last, &retried)?;
            self.counts.api_calls = self.src.calls() + self.dst.calls() - before;
            (self.progress)(&self.def.direction_name(self.from_a), &self.counts);
            if !more {
                break;
            }
        }
        if def.deletes != Deletes::Ignore {
            self.deletes()?;
        }
        self.counts.api_calls = self.src.calls() + self.dst.calls() - before;
        Ok(())
    }
}

/// What a run of the directions did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The counts per direction name, in the order they ran.
    pub counts: Vec<(String, Counts)>,
    /// The first failures.
    pub failures: FailureList,
    /// The last records written from side A (`[recent]`), oldest first.
    pub recent: Vec<Value>,
}

/// Runs a sync's directions (`lookups`: per field, where a `lookup` field's ids translate).
pub fn run<'a>(
    def: &SyncDef,
    store: &dyn SyncStore,
    lookups: Vec<Option<LookupLinks>>,
    a: &mut Box<dyn Side + 'a>,
    b: &mut Box<dyn Side + 'a>,
    flags: RunFlags,
    progress: Progress<'_>,
) -> Result<Outcome, String> {
    let mut out = Vec::new();
    let mut failures = Vec::new();
    let mut recent = Vec::new();
    let map = Mapper::new(def, store, lookups);
    for from_a in def.directions() {
        let (src, dst) = if from_a { (&mut *a, &mut *b) } else { (&mut *b, &mut *a) };
        let mut pass = Pass {
            def,
            store,
            map: &map,
            flags,
            from_a,
            src,
            dst,
            counts: Counts::default(),
            failures: Vec::new(),
            recent: Vec::new(),
            progress,
        };
        pass.run()?;
        failures.extend(pass.failures);
        recent.extend(pass.recent);
        out.push((def.direction_name(from_a), pass.counts));
    }
    Ok(Outcome { counts: out, failures, recent })
}
