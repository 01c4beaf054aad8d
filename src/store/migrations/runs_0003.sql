-- `runs_open` only repeated what `runs_status (status, started_at)` already finds (the queued and
-- running runs, oldest first), and every run's start and end paid for keeping it.
DROP INDEX IF EXISTS runs_open;
