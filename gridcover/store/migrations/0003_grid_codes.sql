-- Grid history keeps each grid's standard code (网格编码, geo/gridcodes.py) and its part-time grid workers
-- (兼职网格员, counted in 网格员专职化比例), so every version of the grids holds them.
ALTER TABLE grid_history ADD COLUMN part_time_workers bigint;
ALTER TABLE grid_history ADD COLUMN code text;
CREATE INDEX grid_history_code ON grid_history (code);
