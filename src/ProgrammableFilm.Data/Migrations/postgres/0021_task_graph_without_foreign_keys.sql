-- A job's task graph is written once, by one COPY of its tasks and one of their edges in the submission's transaction
-- (TaskGraphWriter), and never deleted. Checking a foreign key runs a lookup and takes a KEY SHARE lock on the
-- referenced row for every row copied: for a 100,000-task job that was 1.3 s of a 3-s submission, most of it the
-- edges locking (and so rewriting) the tasks they had just inserted. tasks.job_id repeats the shot's job (checked
-- through tasks.shot_id, which stays), and both ends of an edge are tasks of the same write.
ALTER TABLE task_dependencies DROP CONSTRAINT task_dependencies_task_id_fkey;
ALTER TABLE task_dependencies DROP CONSTRAINT task_dependencies_depends_on_task_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey;
