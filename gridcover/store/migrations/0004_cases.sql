-- Cases (事件) stored through the case API (POST /cases), kept by every new analysis (analyze --db replaces the
-- layer tables only): the GeoPackage workspace keeps them in cases.sqlite beside it. Times are UTC; the
-- deadlines are those answered at intake.
CREATE TABLE gridcover_cases (
    id             text PRIMARY KEY,
    reported_at    timestamptz NOT NULL,
    urgency        text NOT NULL,
    category       text,
    source         text,
    household_id   text,
    address        text,
    location       text,
    input_crs      text,
    lon            double precision,
    lat            double precision,
    grid_id        text,
    grid_name      text,
    community_id   text,
    street_id      text,
    worker_name    text,
    worker_phone   text,
    covered        boolean,
    nearest_grid_id text,
    distance_m     double precision,
    method         text,
    grid_version   text,
    response_due   timestamptz,
    closure_due    timestamptz,
    accepted_at    timestamptz,
    accepted_by    text,
    closed_at      timestamptz,
    closed_by      text,
    received_at    timestamptz NOT NULL,
    received_by    text,
    fingerprint    text NOT NULL,
    geom           geometry(Point, 4326) GENERATED ALWAYS AS (
                       CASE WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END
                   ) STORED
);
CREATE INDEX gridcover_cases_reported ON gridcover_cases (reported_at, id);
CREATE INDEX gridcover_cases_grid ON gridcover_cases (grid_id);
CREATE INDEX gridcover_cases_street ON gridcover_cases (street_id);
CREATE INDEX gridcover_cases_open ON gridcover_cases (closure_due) WHERE closed_at IS NULL;
CREATE INDEX gridcover_cases_geom_gist ON gridcover_cases USING gist (geom);
