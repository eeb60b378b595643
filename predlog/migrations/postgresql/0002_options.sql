-- the answer options (intervals, importances): the warm-up asks again with the askers' own, which the response key holds
ALTER TABLE predictions ADD COLUMN options TEXT NOT NULL DEFAULT '{}'
