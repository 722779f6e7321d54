-- gridcover workspace in PostGIS, version 1: the tables that do not depend on the data.
-- Run by gridcover.postgis.migrate() with search_path set to the workspace schema (default gridcover),
-- inside one transaction; the layer tables (households, grids, ...) are created by each analysis, with
-- typed columns, a primary key, a GiST index on geom and the statement trigger defined below.

-- identity, version and summary of the workspace (as the GeoPackage's gridcover_meta)
CREATE TABLE gridcover_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- the layers the workspace holds, in the order analyze wrote them
CREATE TABLE gridcover_layers (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]*$'),
    position      integer NOT NULL,
    geometry_type text NOT NULL,
    features      bigint NOT NULL
);

-- grid history (网格调整记录): one row per version of the grids layer
CREATE TABLE gridcover_grid_versions (
    version     integer PRIMARY KEY CHECK (version > 0),
    created     timestamptz NOT NULL,
    author      text NOT NULL,
    reason      text NOT NULL,
    kind        text NOT NULL,
    communities text[] NOT NULL,
    parent      integer REFERENCES gridcover_grid_versions (version),
    n_grids     integer NOT NULL
);

-- the grids of every version (the fields a user draws)
CREATE TABLE grid_history (
    version            integer NOT NULL REFERENCES gridcover_grid_versions (version) ON DELETE CASCADE,
    position           integer NOT NULL,
    id                 text NOT NULL,
    name               text,
    community_id       text NOT NULL,
    worker_name        text,
    worker_phone       text,
    full_time_workers  bigint,
    info_officer_name  text,
    info_officer_phone text,
    mediator_name      text,
    mediator_phone     text,
    geom               geometry(Geometry, 4326),
    PRIMARY KEY (version, id)
);
CREATE INDEX grid_history_geom_gist ON grid_history USING gist (geom);
CREATE INDEX grid_history_community ON grid_history (community_id, version);

-- every change of the meta table (a new version, an edit of a layer) is announced to the server
-- processes sharing the database: NOTIFY gridcover, payload = the schema (delivered at commit)
CREATE FUNCTION gridcover_meta_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridcover', TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;
CREATE TRIGGER gridcover_meta_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gridcover_meta
    FOR EACH STATEMENT EXECUTE FUNCTION gridcover_meta_changed();

-- a layer table edited in place (QGIS on PostGIS, SQL) counts one edit: caches keyed by it turn stale
CREATE FUNCTION gridcover_layer_edited() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %I.gridcover_meta SET value = (value::bigint + 1)::text WHERE key = %L',
                   TG_TABLE_SCHEMA, 'edits');
    RETURN NULL;
END $$;
