-- The submitting request's trace context, so that each attempt's trace (dispatch, broker, worker, engine) links to it.
ALTER TABLE shots ADD COLUMN trace_parent TEXT NULL;
