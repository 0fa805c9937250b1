-- TimescaleDB path: rollup_1d is a continuous aggregate (0004); the native path's closed-day
-- tables do not exist here. Nothing to do.
SELECT 1;
