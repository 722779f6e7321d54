-- The scorecard's snapshots (docs/history.md): every `analyze --as-of DATE` keeps the scorecard of that date,
-- carried forward by each new analysis into the schema (the same as_of run again replaces that date's rows).
CREATE TABLE scorecard_history (
    as_of       date NOT NULL,
    level       text NOT NULL,          -- community, street, zone
    id          text NOT NULL,          -- the unit's id
    name        text,
    indicator   text NOT NULL,
    value       double precision,
    target      double precision,       -- the target in force on as_of
    target_year integer,                -- the year whose figure that is (NULL: one figure for every year)
    pass        boolean,
    numerator   double precision,
    denominator double precision,
    note        text,
    recorded    text,                   -- when the run was made (ISO 8601 UTC)
    PRIMARY KEY (as_of, level, id, indicator)
);

-- What "changed since last month" compares: per snapshot, the households that were red, the grids that were
-- overloaded, the cases that were overdue. Ids: only in the workspace, never in a public answer (counts only).
CREATE TABLE scorecard_history_ids (
    as_of        date NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('red_household', 'overloaded_grid', 'overdue_case')),
    id           text NOT NULL,
    name         text,                  -- grids only (not personal)
    grid_id      text,
    community_id text,
    street_id    text,
    PRIMARY KEY (as_of, kind, id)
);
CREATE INDEX scorecard_history_ids_kind ON scorecard_history_ids (kind, as_of);
