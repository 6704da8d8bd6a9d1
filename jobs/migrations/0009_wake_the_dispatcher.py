"""Any change to tiles or jobs wakes the dispatcher (it LISTENs on ``imagepipe_dispatch``) instead
of it polling the tables several times a second."""

from django.db import migrations

CREATE = """
CREATE FUNCTION imagepipe_wake_dispatcher() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('imagepipe_dispatch', '');  -- sent on commit, once per transaction
    RETURN NULL;
END $$;
CREATE TRIGGER tile_changed AFTER INSERT OR UPDATE ON jobs_tile
    FOR EACH STATEMENT EXECUTE FUNCTION imagepipe_wake_dispatcher();
CREATE TRIGGER job_changed AFTER UPDATE ON jobs_job
    FOR EACH STATEMENT EXECUTE FUNCTION imagepipe_wake_dispatcher();
"""
DROP = """
DROP TRIGGER job_changed ON jobs_job;
DROP TRIGGER tile_changed ON jobs_tile;
DROP FUNCTION imagepipe_wake_dispatcher();
"""


class Migration(migrations.Migration):
    dependencies = [("jobs", "0008_tile_dispatch_indexes")]
    operations = [migrations.RunSQL(CREATE, DROP)]
