-- A worker's claim, its success and its progress find their task by the attempt it runs (tasks.current_attempt_id),
-- which no index covered: with a million tasks queued each of those statements read the whole table (200-300 ms,
-- auto_explain in docs/performance.md, session 25), and the farm's claims and successes waited in line behind them.
-- Only Dispatched and Running tasks are looked up so: the index takes entries for the live ones alone (a few per
-- worker slot), and those of tasks that moved on are dead and vacuumed away, so it stays small however big the backlog.
CREATE INDEX ix_tasks_live_attempt ON tasks (current_attempt_id) WHERE state IN ('Dispatched', 'Running');
