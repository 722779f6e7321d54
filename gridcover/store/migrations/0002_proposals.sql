-- Saved redraw proposals (drafts and applied ones) in the database, so every server sharing it sees them
-- (the GeoPackage workspace keeps them in redraw_proposals.sqlite beside the workspace).
CREATE TABLE grid_proposals (
    id              text PRIMARY KEY,
    created         timestamptz NOT NULL,
    author          text NOT NULL,
    status          text NOT NULL,
    base_version    integer,
    communities     text[] NOT NULL,
    valid           boolean NOT NULL,
    grids           text NOT NULL,          -- GeoJSON
    report          text NOT NULL,          -- the check (JSON; may hold NaN, as Python writes it)
    applied_version integer,
    note            text
);
CREATE INDEX grid_proposals_created ON grid_proposals (created DESC);
