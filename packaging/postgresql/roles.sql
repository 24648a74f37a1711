-- Least-privilege roles for a building of doors sharing one faceapp database on PostgreSQL.
-- Run as the database's owner after the schema exists (the admin app's first start creates it):
--     psql -d faceapp -v ON_ERROR_STOP=1 -f packaging/postgresql/roles.sql
-- then give each role a password (ALTER ROLE faceapp_door PASSWORD '...') and use
--     admin app: postgresql://faceapp_admin:...@server/faceapp?sslmode=verify-full
--     each door: postgresql://faceapp_door:...@server/faceapp?sslmode=verify-full
-- Doors read the gallery and append to the access log; only the admin role changes people.
-- No role can change or delete a logged event: the table's triggers refuse it for everyone.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'faceapp_admin') THEN
    CREATE ROLE faceapp_admin LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'faceapp_door') THEN
    CREATE ROLE faceapp_door LOGIN;
  END IF;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO faceapp_admin, faceapp_door;

-- the admin app: people, their templates, imports, removals, key rotation, the log
GRANT SELECT, INSERT, UPDATE, DELETE ON people, templates, meta TO faceapp_admin;
GRANT SELECT, INSERT ON events TO faceapp_admin;
GRANT SELECT ON alembic_version TO faceapp_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO faceapp_admin;

-- a door: read the gallery, append decisions (the chain's end lives in meta)
GRANT SELECT ON people, templates, alembic_version TO faceapp_door;
GRANT SELECT, UPDATE (value) ON meta TO faceapp_door;
GRANT SELECT, INSERT ON events TO faceapp_door;
GRANT USAGE ON SEQUENCE events_id_seq TO faceapp_door;
