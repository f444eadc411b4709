-- Every row a job's plan writes pays for each index on its table, and so does every state change of a task (a state
-- change is never a HOT update: the Ready index's predicate reads the state). ix_tasks_job (job_id, state) served
-- only a job's bulk operations (cancel, retry), which ix_tasks_job_order (job_id, id) serves as well: they visit most
-- of the job's tasks anyway. An edge is looked up only from the task it depends on (its dependents, when it
-- succeeds, and a retry's count of unfinished dependencies), so one index, the primary key led by that column, is
-- enough. Together: 0.3 s of the 100,000-task job's submission (docs/performance.md, session 16).
DROP INDEX ix_tasks_job;
ALTER TABLE task_dependencies DROP CONSTRAINT task_dependencies_pkey;
DROP INDEX ix_task_dependencies_depends_on;
ALTER TABLE task_dependencies ADD PRIMARY KEY (depends_on_task_id, task_id);
