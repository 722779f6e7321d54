"""The store: where a workspace lives (GeoPackage: gpkg, PostGIS: postgis)."""
