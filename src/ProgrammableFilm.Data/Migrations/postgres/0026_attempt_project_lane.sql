-- Every dispatch pass counts the queued and claimed attempts by pool, project and lane (the pools' room and the fair
-- share's occupancy). Read through tasks and jobs, that join cost 250-530 ms a pass with 50,000 attempts queued for a
-- big fleet (docs/performance.md, session 22); carried on the attempt, set when it is dispatched, it is a read of the
-- live attempts alone. Finished attempts of older versions are left without them: nothing reads them there.
ALTER TABLE attempts ADD COLUMN project text NULL;
ALTER TABLE attempts ADD COLUMN lane integer NULL;
UPDATE attempts AS a SET project = j.project, lane = t.lane
FROM tasks AS t JOIN jobs AS j ON j.id = t.job_id
WHERE t.id = a.task_id AND a.state IN ('Queued', 'Claimed');
