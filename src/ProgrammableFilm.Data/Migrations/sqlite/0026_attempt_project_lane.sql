-- The dispatcher counts live attempts by pool, project and lane without joining tasks and jobs (see the PostgreSQL
-- script). Finished attempts of older versions are left without them: nothing reads them there.
ALTER TABLE attempts ADD COLUMN project TEXT NULL;
ALTER TABLE attempts ADD COLUMN lane INTEGER NULL;
UPDATE attempts SET
    project = (SELECT j.project FROM tasks AS t JOIN jobs AS j ON j.id = t.job_id WHERE t.id = attempts.task_id),
    lane = (SELECT t.lane FROM tasks AS t WHERE t.id = attempts.task_id)
WHERE state IN ('Queued', 'Claimed');
