-- Claims, successes and progress find their task by its current attempt (see the PostgreSQL script). SQLite uses a
-- partial index only when the query repeats its predicate word for word, so the embedded one covers every task.
CREATE INDEX ix_tasks_current_attempt ON tasks (current_attempt_id);
