-- Every task row pays for every index at planning time (a 100,000-task job is 100,000 entries per index, written in
-- the submission's transaction). ix_tasks_dispatch served the dispatcher's single Ready query over all jobs, which
-- became a per-job LATERAL over ix_tasks_ready_by_job (0008); that partial index also counts the Ready tasks per lane
-- for the fleet view. SQLite (embedded, small jobs) keeps it: its dispatcher still reads Ready tasks in one query.
DROP INDEX IF EXISTS ix_tasks_dispatch;
