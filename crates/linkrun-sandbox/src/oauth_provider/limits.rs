//! Zoho Accounts' token limits (`docs/api-facts.md` §1.5), enforced as production does, each a
//! knob of `zoho_accounts` in [`crate::faults::Knobs`], on by default (`null` turns one off):
//!
//! | knob | default | when it bites |
//! |------|---------|---------------|
//! | `access_tokens_per_refresh_token_per_10_min` | 10 | the next refresh within 10 minutes of the 10th before it is answered HTTP 200 `{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}`; nothing is issued |
//! | `live_access_tokens_per_refresh_token` | 15 | issuing the 16th live access token of a refresh token kills the oldest live one: it is then answered as any unknown token (CRM: 401 `INVALID_TOKEN`) |
//! | `refresh_tokens_per_client_and_user` | 20 | issuing the 21st refresh token of a client and user deletes the oldest with its access tokens: a refresh with it is then answered as a dead refresh token (`{"error":"invalid_code"}`) |
//!
//! What is a guess: the throttle body past its first words (the facts quote it in full only as
//! plausible); that the 10 in 10 minutes count refreshes only (the code exchange that made the
//! refresh token is not counted) in a rolling window, denied requests not counted; 15 live tokens
//! (the Accounts page says 10, Zoho CRM v8 says 15, other products 30: the sandbox emulates the
//! CRM's); that "user" is the grant's user (self-client grants have none, so they share one
//! count per client). The windows run on the provider's clock, so `POST
//! /_sandbox/oauth/advance?secs=600` moves past one. Only the Zoho flavour has these limits.

use super::*;

/// The rolling window of `access_tokens_per_refresh_token_per_10_min`.
const REFRESH_WINDOW_MS: u64 = 10 * 60 * 1000;

/// Zoho's throttle answer's `error_description`.
pub(super) const THROTTLE_DESCRIPTION: &str =
    "You have made too many requests continuously. Please try again after some time.";

impl ProviderState {
    /// The limits in force: the knobs for Zoho, none for ServiceNow.
    fn limits(&self) -> Option<crate::faults::ZohoAccountsKnobs> {
        self.is_zoho().then(|| self.knobs.knobs().zoho_accounts)
    }

    /// A refresh with `refresh` is about to issue an access token: refuses it past the
    /// 10-minute limit, else counts it.
    pub(super) fn count_refresh(&mut self, refresh: &str) -> Result<(), TokenError> {
        let Some(limit) = self.limits().and_then(|l| l.access_tokens_per_refresh_token_per_10_min) else {
            return Ok(());
        };
        let now = self.now_ms();
        let times = self.refresh_times.entry(refresh.to_string()).or_default();
        while times.front().is_some_and(|t| now.saturating_sub(*t) >= REFRESH_WINDOW_MS) {
            times.pop_front();
        }
        if times.len() as u64 >= limit {
            self.stats.refreshes_throttled += 1;
            return Err(TokenError::Throttled);
        }
        times.push_back(now);
        Ok(())
    }

    /// An access token of `refresh` is about to be issued: kills the oldest live ones so that,
    /// with it, there are at most the limit.
    pub(super) fn make_room_for_access(&mut self, refresh: &str) -> Result<(), TokenError> {
        let Some(limit) = self.limits().and_then(|l| l.live_access_tokens_per_refresh_token) else {
            return Ok(());
        };
        let now = self.now_ms();
        let mut live: Vec<(u64, u64, String)> = self
            .access
            .iter()
            .filter(|(_, a)| a.refresh.as_deref() == Some(refresh) && a.expires_ms > now)
            .map(|(t, a)| (a.seq, a.expires_ms, t.clone()))
            .collect();
        live.sort();
        let excess = (live.len() as u64 + 1).saturating_sub(limit.max(1)) as usize;
        for (_, _, token) in live.into_iter().take(excess) {
            self.stored(|s| s.revoke(&token))?;
            self.access.remove(&token);
            self.stats.access_tokens_killed += 1;
        }
        Ok(())
    }

    /// A refresh token of `grant`'s client and user is about to be issued (in place of
    /// `replacing`, when it rotates): deletes the oldest ones, with their access tokens, so that
    /// with it there are at most the limit.
    pub(super) fn make_room_for_refresh(&mut self, grant: &Grant, replacing: Option<&str>) -> Result<(), TokenError> {
        let Some(limit) = self.limits().and_then(|l| l.refresh_tokens_per_client_and_user) else {
            return Ok(());
        };
        let mut same: Vec<(u64, String)> = self
            .refresh
            .iter()
            .filter(|(t, r)| {
                r.grant.client_id == grant.client_id && r.grant.user == grant.user && Some(t.as_str()) != replacing
            })
            .map(|(t, r)| (r.seq, t.clone()))
            .collect();
        same.sort();
        let excess = (same.len() as u64 + 1).saturating_sub(limit.max(1)) as usize;
        for (_, token) in same.into_iter().take(excess) {
            self.stored(|s| s.revoke(&token))?;
            self.refresh.remove(&token);
            self.refresh_times.remove(&token);
            self.access.retain(|_, a| a.refresh.as_deref() != Some(token.as_str()));
            self.stats.refresh_tokens_deleted += 1;
        }
        Ok(())
    }

    /// The next issue number (orders tokens from oldest to newest).
    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}
