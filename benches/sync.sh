#!/usr/bin/env bash
# The sync engine's figures (issue: a sync engine), against the sandbox:
#  - 10,000 ServiceNow contacts one way into CRM (pages of 1,000): API calls (target <= 116: the
#    minimum is 10 reads + 100 writes; token requests are not counted), wall time as a ratio
#    against scripts/servicenow_contacts_to_crm.rhai copying the same contacts into a fresh
#    sandbox in the same run, and records/s;
#  - a second run after 100 contacts changed: its calls (target: the pages holding them + 1 write);
#  - the engine's peak RSS for 10,000 and 50,000 contacts (target: within 1.2x).
#
#   benches/sync.sh             # SIZES=10000,50000 ROUNDS=1
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=support/build.sh
. "$ROOT/benches/support/build.sh"
python3 "$ROOT/benches/support/sync_driver.py" "$BIN" "$ROOT"
