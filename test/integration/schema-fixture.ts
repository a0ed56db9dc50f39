// A rich source schema for the schema-dump tests: every object kind schema dump handles, with
// identifiers of every awkward shape (mixed case, spaces, quotes, dots, reserved words, unicode, a
// line break). Runs on PostgreSQL 15 to 18.

export const NASTY = {
  schema: 'Weird "Schema".x',
  table: 'Order Items',
  reserved: 'select',
  unicode: 'ünïcødé_表',
  newline: 'line\nbreak',
}

export const RICH_SCHEMA_SQL = String.raw`
-- Roles are cluster-wide and test files run in parallel: create them once, tolerate the race.
DO $$ BEGIN CREATE ROLE steep_fixture_reader NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE "steep fixture Writer" NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'application schema';
CREATE SCHEMA "Weird ""Schema"".x";
CREATE EXTENSION citext WITH SCHEMA app;
CREATE EXTENSION btree_gist WITH SCHEMA public;

CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
COMMENT ON TYPE app.mood IS 'how it feels';
CREATE TYPE app.address AS (street text COLLATE "C", zip varchar(10), geo point);
CREATE TYPE app.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE DOMAIN app.posint AS integer NOT NULL DEFAULT 1 CONSTRAINT posint_positive CHECK (VALUE > 0);
COMMENT ON DOMAIN app.posint IS 'a positive integer';
CREATE DOMAIN app.email AS app.citext CONSTRAINT email_at CHECK (VALUE ~ '@');
CREATE DOMAIN "Weird ""Schema"".x"."select" AS text COLLATE "C" CHECK (length(VALUE) < 100);

CREATE SEQUENCE app.invoice_no AS integer START WITH 1000 INCREMENT BY 7 MINVALUE 10 MAXVALUE 900000 CACHE 5 CYCLE;
COMMENT ON SEQUENCE app.invoice_no IS 'invoice numbers';
CREATE SEQUENCE app.countdown INCREMENT BY -1 START WITH -1;
CREATE UNLOGGED SEQUENCE app.scratch_seq;

CREATE FUNCTION app.add_one(i integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT i + 1';
COMMENT ON FUNCTION app.add_one(integer) IS 'adds one';
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE FUNCTION app.stmt_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE PROCEDURE app.noop(IN a integer, INOUT b text DEFAULT 'x') LANGUAGE plpgsql AS $$ BEGIN b := b || a; END $$;
COMMENT ON PROCEDURE app.noop(integer, text) IS 'does nothing';
CREATE FUNCTION app.float_canon(app.floatrange) RETURNS app.floatrange LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1';

CREATE TABLE app.customers (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 10 CACHE 3) PRIMARY KEY,
    email app.email NOT NULL,
    name varchar(200) COLLATE "C" NOT NULL,
    mood app.mood DEFAULT 'ok',
    home app.address,
    score numeric(10,2) DEFAULT 0.00 CHECK (score >= 0),
    tags text[] DEFAULT '{}'::text[],
    created_at timestamp(3) with time zone NOT NULL DEFAULT now(),
    updated_at timestamptz,
    flags bit(4),
    lower_name text GENERATED ALWAYS AS (lower(name::text)) STORED,
    CONSTRAINT customers_email_key UNIQUE (email) DEFERRABLE INITIALLY DEFERRED
);
COMMENT ON TABLE app.customers IS 'people who pay';
COMMENT ON COLUMN app.customers.email IS 'login e-mail';
ALTER TABLE app.customers ALTER COLUMN tags SET STATISTICS 500;
ALTER TABLE app.customers ALTER COLUMN name SET STORAGE MAIN;
CREATE INDEX customers_lower_name_idx ON app.customers (lower(name::text) DESC NULLS LAST) WHERE score > 0;
CREATE INDEX customers_created_idx ON app.customers USING btree (created_at) INCLUDE (score) WITH (fillfactor = 80);
CREATE INDEX customers_tags_idx ON app.customers USING gin (tags);
CREATE INDEX customers_mood_hash ON app.customers USING hash (mood);
COMMENT ON INDEX app.customers_tags_idx IS 'tag search';
CREATE STATISTICS app.customers_stats (dependencies, ndistinct) ON mood, score FROM app.customers;
ALTER TABLE app.customers CLUSTER ON customers_created_idx;

CREATE TRIGGER customers_touch BEFORE UPDATE ON app.customers FOR EACH ROW WHEN (OLD.score IS DISTINCT FROM NEW.score) EXECUTE FUNCTION app.touch();
COMMENT ON TRIGGER customers_touch ON app.customers IS 'keeps updated_at';
CREATE TRIGGER customers_log AFTER INSERT OR DELETE ON app.customers FOR EACH STATEMENT EXECUTE FUNCTION app.stmt_log();
ALTER TABLE app.customers DISABLE TRIGGER customers_log;
CREATE TRIGGER customers_replica BEFORE INSERT ON app.customers FOR EACH ROW EXECUTE FUNCTION app.touch();
ALTER TABLE app.customers ENABLE REPLICA TRIGGER customers_replica;

CREATE TABLE app.invoices (
    no integer NOT NULL DEFAULT nextval('app.invoice_no'),
    customer_id bigint NOT NULL REFERENCES app.customers (id) ON DELETE CASCADE DEFERRABLE,
    amount numeric(12,2) NOT NULL,
    period tstzrange,
    qty app.posint,
    CONSTRAINT invoices_pkey PRIMARY KEY (no) INCLUDE (amount),
    CONSTRAINT invoices_no_overlap EXCLUDE USING gist (customer_id WITH =, period WITH &&)
);
ALTER SEQUENCE app.invoice_no OWNED BY app.invoices.no;
ALTER TABLE app.invoices ADD CONSTRAINT invoices_amount_check CHECK (amount <> 0) NOT VALID;
ALTER TABLE app.invoices REPLICA IDENTITY FULL;

CREATE TABLE app.serials (id serial PRIMARY KEY, big bigserial, note text NOT NULL UNIQUE NULLS NOT DISTINCT);
ALTER TABLE app.serials REPLICA IDENTITY USING INDEX serials_note_key;

CREATE UNLOGGED TABLE app.scratch (k text, v jsonb, id integer GENERATED BY DEFAULT AS IDENTITY) WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE app.scratch REPLICA IDENTITY NOTHING;

CREATE TABLE app.events (
    id bigint NOT NULL,
    happened date NOT NULL,
    kind text NOT NULL CHECK (kind <> ''),
    payload jsonb,
    PRIMARY KEY (id, happened)
) PARTITION BY RANGE (happened);
COMMENT ON TABLE app.events IS 'partitioned by month';
CREATE TABLE app.events_2024_01 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE app.events_2024_02 PARTITION OF app.events FOR VALUES FROM ('2024-02-01') TO ('2024-03-01') PARTITION BY HASH (id);
CREATE TABLE app.events_2024_02_h0 PARTITION OF app.events_2024_02 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE app.events_2024_02_h1 PARTITION OF app.events_2024_02 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE app.events_default PARTITION OF app.events DEFAULT;
CREATE INDEX events_kind_idx ON app.events (kind);
CREATE TRIGGER events_touch BEFORE INSERT ON app.events FOR EACH ROW EXECUTE FUNCTION app.stmt_log();

CREATE TABLE app.regions (code text NOT NULL, name text) PARTITION BY LIST (code);
CREATE TABLE app.regions_eu PARTITION OF app.regions FOR VALUES IN ('de', 'fr', 'it''s');
CREATE TABLE app.regions_other (name text, code text NOT NULL);
ALTER TABLE app.regions ATTACH PARTITION app.regions_other DEFAULT;

CREATE TABLE app.event_refs (
    event_id bigint NOT NULL,
    event_day date NOT NULL,
    FOREIGN KEY (event_id, event_day) REFERENCES app.events (id, happened)
);

CREATE TABLE app.base_log (id integer, at timestamptz DEFAULT now(), CONSTRAINT base_log_id_check CHECK (id > 0));
CREATE TABLE app.child_log (extra text) INHERITS (app.base_log);
ALTER TABLE ONLY app.child_log ALTER COLUMN at SET DEFAULT '2000-01-01';

CREATE TABLE app.documents (id integer PRIMARY KEY, owner_name name NOT NULL DEFAULT current_user, body text);
ALTER TABLE app.documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_owner ON app.documents AS PERMISSIVE FOR ALL TO PUBLIC USING (owner_name = current_user) WITH CHECK (owner_name = current_user);
CREATE POLICY documents_no_delete ON app.documents AS RESTRICTIVE FOR DELETE TO PUBLIC USING (false);
CREATE RULE documents_protect AS ON UPDATE TO app.documents WHERE OLD.id = 0 DO INSTEAD NOTHING;

CREATE FUNCTION app.customer_count() RETURNS bigint LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT count(*) FROM app.customers;
END;

CREATE VIEW app.happy_customers WITH (security_barrier = true) AS
  SELECT id, name, app.add_one(1) AS one FROM app.customers WHERE mood = 'happy' WITH LOCAL CHECK OPTION;
COMMENT ON VIEW app.happy_customers IS 'only the happy ones';
COMMENT ON COLUMN app.happy_customers.name IS 'their name';
CREATE VIEW app.customer_totals AS
  SELECT c.id, c.name, sum(i.amount) AS total FROM app.customers c JOIN app.invoices i ON i.customer_id = c.id GROUP BY c.id;
CREATE MATERIALIZED VIEW app.mood_counts AS SELECT mood, count(*) AS n FROM app.customers GROUP BY mood;
CREATE UNIQUE INDEX mood_counts_mood ON app.mood_counts (mood);
COMMENT ON MATERIALIZED VIEW app.mood_counts IS 'per mood';

CREATE TABLE "Weird ""Schema"".x"."Order Items" (
    "select" integer NOT NULL,
    "ünïcødé_表" text DEFAULT 'ä''ö',
    "line
break" boolean,
    "MixedCase" "Weird ""Schema"".x"."select",
    "quote""d" app.mood[],
    CONSTRAINT "Order Items_pkey" PRIMARY KEY ("select"),
    CONSTRAINT "check ""it""" CHECK ("select" < 1000000)
);
COMMENT ON TABLE "Weird ""Schema"".x"."Order Items" IS 'nasty names: it''s fine';
COMMENT ON COLUMN "Weird ""Schema"".x"."Order Items"."line
break" IS 'a column name with a line break';
CREATE INDEX "idx ""Order"" Items" ON "Weird ""Schema"".x"."Order Items" ("ünïcødé_表", "MixedCase");
CREATE TABLE "Weird ""Schema"".x"."CamelRef" (
    id integer PRIMARY KEY,
    item integer REFERENCES "Weird ""Schema"".x"."Order Items" ("select") ON UPDATE CASCADE
);
CREATE VIEW "Weird ""Schema"".x"."View.With.Dots" AS SELECT "select", "ünïcødé_表" FROM "Weird ""Schema"".x"."Order Items";

GRANT USAGE ON SCHEMA app TO steep_fixture_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO steep_fixture_reader;
GRANT INSERT, UPDATE ON app.customers TO "steep fixture Writer" WITH GRANT OPTION;
GRANT UPDATE (name, mood) ON app.customers TO steep_fixture_reader;
GRANT USAGE ON SEQUENCE app.invoice_no TO "steep fixture Writer";
REVOKE EXECUTE ON FUNCTION app.add_one(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.add_one(integer) TO steep_fixture_reader;
REVOKE USAGE ON TYPE app.mood FROM PUBLIC;
GRANT USAGE ON TYPE app.mood TO steep_fixture_reader;
GRANT SELECT ON "Weird ""Schema"".x"."View.With.Dots" TO PUBLIC;

-- Edge cases: rowtype columns, multiple inheritance with NO INHERIT, NOT VALID and mutual foreign
-- keys, a table without columns, INSTEAD OF triggers, matviews on matviews, partial and expression
-- indexes with opclass and collation, partitioned unique keys, identity in an inheritance tree.
CREATE SCHEMA edge;
SET search_path = edge;
CREATE TYPE color AS ENUM ('red','green');
CREATE DOMAIN colors AS color[] CHECK (cardinality(VALUE) < 5);
CREATE DOMAIN pos AS int CHECK (VALUE > 0);
CREATE TABLE a (id int PRIMARY KEY, d int UNIQUE DEFERRABLE, b_id int, c color CHECK (c <> 'red'), cs colors, p pos[]);
CREATE TABLE b (id int PRIMARY KEY, a_id int); ALTER TABLE b ADD FOREIGN KEY (a_id) REFERENCES a(id) NOT VALID;
ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b(id);
CREATE TABLE holder (x a, y b[]);
CREATE TABLE empty_one ();
CREATE TABLE par1 (x int, y text CHECK (y <> '') NO INHERIT);
CREATE TABLE par2 (x int, z int);
CREATE TABLE kid (w int) INHERITS (par1, par2);
CREATE FUNCTION all_a() RETURNS SETOF a LANGUAGE sql STABLE AS 'SELECT * FROM edge.a';
CREATE VIEW va AS SELECT * FROM all_a();
CREATE VIEW vva AS SELECT id FROM va WHERE id > 1;
CREATE FUNCTION vtrig() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER vva_ins INSTEAD OF INSERT ON vva FOR EACH ROW EXECUTE FUNCTION vtrig();
CREATE MATERIALIZED VIEW m1 AS SELECT id FROM a;
CREATE MATERIALIZED VIEW m2 AS SELECT count(*) FROM m1;
CREATE UNIQUE INDEX a_c_partial ON a (c) WHERE id > 10;
CREATE INDEX a_expr ON a ((lower(d::text)) COLLATE "C" text_pattern_ops);
CREATE TABLE pp (id int, k int, UNIQUE (id, k)) PARTITION BY RANGE (k);
CREATE TABLE pp1 PARTITION OF pp FOR VALUES FROM (0) TO (5);
CREATE SCHEMA other; CREATE SEQUENCE other.s; CREATE TABLE other.t (i int DEFAULT nextval($$other.s$$)); ALTER SEQUENCE other.s OWNED BY other.t.i;
COMMENT ON TABLE a IS E'multi\nline ''quoted'' comment';
CREATE TABLE idt (id bigint GENERATED BY DEFAULT AS IDENTITY (START 5 MAXVALUE 1000 CYCLE), v text);
CREATE TABLE idt_kid (extra int) INHERITS (idt);
CREATE UNLOGGED TABLE ul (a int PRIMARY KEY);
ALTER TABLE ul ALTER COLUMN a SET (n_distinct = 100);
CREATE INDEX brin_idx ON ul USING brin (a) WITH (pages_per_range = 16);
CREATE INDEX ul_expr ON ul ((a + 1)); ALTER INDEX ul_expr ALTER COLUMN 1 SET STATISTICS 50;
RESET search_path;
`
