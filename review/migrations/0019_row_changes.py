"""A log of the annotations and items each transaction wrote, for the agreement
recompute's kept reads (review/kept.py), on PostgreSQL.

Triggers on review_annotation and review_item record, per statement, the kind of row
(1 annotation, 2 item), its queue and its id, for every row inserted, updated or deleted,
with the writing transaction's id (xid8): whatever writes them (the services, cascades, the
admin, COPY, SQL by hand). A recompute that kept a queue's rows from an earlier read reads
again only the rows changed by transactions that read could not see. A TRUNCATE raises the
horizon below which the log cannot be trusted, as pruning does (`row_changes_prune`).
"""

from django.db import migrations

CREATE = """
CREATE TABLE review_row_change (
    kind smallint NOT NULL,
    queue_id bigint NOT NULL,
    row_id bigint NOT NULL,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX review_row_change_by_queue ON review_row_change (queue_id, kind, xid);
CREATE TABLE review_row_change_horizon (
    id smallint PRIMARY KEY CHECK (id = 1),
    pruned_below xid8 NOT NULL,
    next xid8 NOT NULL,
    pruned_at timestamptz NOT NULL
);
INSERT INTO review_row_change_horizon
    VALUES (1, pg_current_xact_id(), pg_current_xact_id(), now());

CREATE FUNCTION review_rows_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO review_row_change (kind, queue_id, row_id)
        SELECT TG_ARGV[0]::smallint, queue_id, id FROM written;
    RETURN NULL;
END $$;
-- An update logs each row under its new queue, and under its old one too where it moved.
CREATE FUNCTION review_rows_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO review_row_change (kind, queue_id, row_id)
        SELECT TG_ARGV[0]::smallint, queue_id, id FROM written
        UNION ALL
        SELECT TG_ARGV[0]::smallint, o.queue_id, o.id FROM was o JOIN written n USING (id)
            WHERE o.queue_id <> n.queue_id;
    RETURN NULL;
END $$;
CREATE FUNCTION review_rows_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE review_row_change_horizon
        SET pruned_below = (pg_current_xact_id()::text::numeric + 1)::text::xid8;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER {table}_inserted AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT
    EXECUTE FUNCTION review_rows_written({kind});
CREATE TRIGGER {table}_updated AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS was NEW TABLE AS written FOR EACH STATEMENT
    EXECUTE FUNCTION review_rows_updated({kind});
CREATE TRIGGER {table}_deleted AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS written FOR EACH STATEMENT
    EXECUTE FUNCTION review_rows_written({kind});
CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION review_rows_truncated();
"""

DROP_TRIGGERS = """
DROP TRIGGER {table}_truncated ON {table};
DROP TRIGGER {table}_deleted ON {table};
DROP TRIGGER {table}_updated ON {table};
DROP TRIGGER {table}_inserted ON {table};
"""

DROP = """
DROP FUNCTION review_rows_truncated();
DROP FUNCTION review_rows_updated();
DROP FUNCTION review_rows_written();
DROP TABLE review_row_change_horizon;
DROP TABLE review_row_change;
"""

# The kinds of row logged (review/kept.py reads them by these numbers).
TABLES = {"review_annotation": 1, "review_item": 2}


def create(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)
        for table, kind in TABLES.items():
            schema_editor.execute(TRIGGERS.format(table=table, kind=kind))


def drop(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(DROP_TRIGGERS.format(table=table))
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0018_item_gold_by_queue"),
    ]

    operations = [migrations.RunPython(create, drop)]
