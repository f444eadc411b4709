-- A task's shot is written by the same code, in the same transaction (a submission) or before it (a shot planned in
-- the background), as the task's row, and shots are never deleted. Checking the key looked up and KEY SHARE-locked
-- the shot for each of its tasks: 0.2–0.5 s of a 100,000-task submission's COPY, about 1 s when the shots were
-- committed before (the background planner), against 0.6–0.8 s for the table's four indexes together.
ALTER TABLE tasks DROP CONSTRAINT tasks_shot_id_fkey;
