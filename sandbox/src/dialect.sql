-- Redshift's functions that PostgreSQL lacks or spells differently, in
-- `sandbox_sys`. The search path is "$user", public, sandbox_sys, pg_catalog:
-- with pg_catalog named last, a function here wins over PostgreSQL's own of
-- the same signature (regexp_replace, which Redshift makes global).
-- Installed once per database and sandbox run; every statement is
-- CREATE OR REPLACE, so a newer sandbox updates an older database.

-- The one table of datepart words and abbreviations Redshift accepts
-- (DATEADD, DATEDIFF, DATE_PART, EXTRACT), as PostgreSQL's field names.
CREATE OR REPLACE FUNCTION sandbox_sys.datepart_unit(part text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  p text := lower(btrim(part));
BEGIN
  RETURN CASE
    WHEN p IN ('millennium', 'millennia', 'mil', 'mils') THEN 'millennium'
    WHEN p IN ('century', 'centuries', 'c', 'cent', 'cents') THEN 'century'
    WHEN p IN ('decade', 'decades', 'dec', 'decs') THEN 'decade'
    WHEN p IN ('epoch') THEN 'epoch'
    WHEN p IN ('year', 'years', 'y', 'yr', 'yrs') THEN 'year'
    WHEN p IN ('quarter', 'quarters', 'qtr', 'qtrs') THEN 'quarter'
    WHEN p IN ('month', 'months', 'mon', 'mons') THEN 'month'
    WHEN p IN ('week', 'weeks', 'w') THEN 'week'
    WHEN p IN ('dayofweek', 'dow', 'dw', 'weekday') THEN 'dow'
    WHEN p IN ('dayofyear', 'doy', 'dy', 'yearday') THEN 'doy'
    WHEN p IN ('day', 'days', 'd') THEN 'day'
    WHEN p IN ('hour', 'hours', 'h', 'hr', 'hrs') THEN 'hour'
    WHEN p IN ('minute', 'minutes', 'm', 'min', 'mins') THEN 'minute'
    WHEN p IN ('second', 'seconds', 's', 'sec', 'secs') THEN 'second'
    WHEN p IN ('millisecond', 'milliseconds', 'ms', 'msec', 'msecs', 'msecond',
               'mseconds', 'millisec', 'millisecs', 'millisecon') THEN 'milliseconds'
    WHEN p IN ('microsecond', 'microseconds', 'microsec', 'microsecs', 'usecond',
               'useconds', 'us', 'usec', 'usecs') THEN 'microseconds'
    WHEN p IN ('timezone', 'timezone_hour', 'timezone_minute') THEN p
  END;
END $$;

CREATE OR REPLACE FUNCTION sandbox_sys.checked_unit(part text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  u text := sandbox_sys.datepart_unit(part);
BEGIN
  IF u IS NULL THEN
    RAISE EXCEPTION 'Invalid datepart: "%" is not a datepart Redshift knows', part
      USING ERRCODE = '22023';
  END IF;
  RETURN u;
END $$;

-- DATE_PART(datepart, timestamp) with every Redshift datepart spelling.
CREATE OR REPLACE FUNCTION sandbox_sys.date_part(part text, ts timestamp)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT pg_catalog.date_part(sandbox_sys.checked_unit(part), ts) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.date_part(part text, ts timestamptz)
RETURNS double precision LANGUAGE sql STABLE STRICT AS $$
  SELECT pg_catalog.date_part(sandbox_sys.checked_unit(part), ts) $$;

-- SYSDATE: the transaction's start, in UTC (written without parentheses;
-- the statement rewriter adds them).
CREATE OR REPLACE FUNCTION sandbox_sys.sysdate() RETURNS timestamp
LANGUAGE sql STABLE AS $$ SELECT now() AT TIME ZONE 'UTC' $$;

-- DATEADD(datepart, interval, timestamp): a timestamp, also for a date.
CREATE OR REPLACE FUNCTION sandbox_sys.dateadd(part text, n bigint, ts timestamp)
RETURNS timestamp LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  u text := sandbox_sys.checked_unit(part);
BEGIN
  IF u IN ('dow', 'doy', 'epoch', 'timezone', 'timezone_hour', 'timezone_minute') THEN
    RAISE EXCEPTION 'Invalid datepart for DATEADD: "%"', part USING ERRCODE = '22023';
  END IF;
  RETURN ts + CASE u
    WHEN 'millennium' THEN n * interval '1000 years'
    WHEN 'century' THEN n * interval '100 years'
    WHEN 'decade' THEN n * interval '10 years'
    WHEN 'year' THEN n * interval '1 year'
    WHEN 'quarter' THEN n * interval '3 months'
    WHEN 'month' THEN n * interval '1 month'
    WHEN 'week' THEN n * interval '7 days'
    WHEN 'day' THEN n * interval '1 day'
    WHEN 'hour' THEN n * interval '1 hour'
    WHEN 'minute' THEN n * interval '1 minute'
    WHEN 'second' THEN n * interval '1 second'
    WHEN 'milliseconds' THEN n * interval '1 millisecond'
    WHEN 'microseconds' THEN n * interval '1 microsecond'
  END;
END $$;

-- DATEDIFF(datepart, start, end): the number of datepart boundaries crossed
-- (DATEDIFF(year, '2019-12-31', '2020-01-01') is 1), as Redshift counts.
CREATE OR REPLACE FUNCTION sandbox_sys.datediff(part text, a timestamp, b timestamp)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  u text := sandbox_sys.checked_unit(part);
  ya int := extract(year FROM a);
  yb int := extract(year FROM b);
BEGIN
  IF u IN ('dow', 'doy', 'epoch', 'timezone', 'timezone_hour', 'timezone_minute') THEN
    RAISE EXCEPTION 'Invalid datepart for DATEDIFF: "%"', part USING ERRCODE = '22023';
  END IF;
  RETURN CASE u
    WHEN 'millennium' THEN floor(yb / 1000.0) - floor(ya / 1000.0)
    WHEN 'century' THEN floor(yb / 100.0) - floor(ya / 100.0)
    WHEN 'decade' THEN floor(yb / 10.0) - floor(ya / 10.0)
    WHEN 'year' THEN yb - ya
    WHEN 'quarter' THEN (yb * 4 + extract(quarter FROM b)) - (ya * 4 + extract(quarter FROM a))
    WHEN 'month' THEN (yb * 12 + extract(month FROM b)) - (ya * 12 + extract(month FROM a))
    WHEN 'week' THEN (date_trunc('week', b)::date - date_trunc('week', a)::date) / 7
    WHEN 'day' THEN b::date - a::date
    WHEN 'hour' THEN (extract(epoch FROM date_trunc('hour', b))
                      - extract(epoch FROM date_trunc('hour', a))) / 3600
    WHEN 'minute' THEN (extract(epoch FROM date_trunc('minute', b))
                        - extract(epoch FROM date_trunc('minute', a))) / 60
    WHEN 'second' THEN extract(epoch FROM date_trunc('second', b))
                       - extract(epoch FROM date_trunc('second', a))
    WHEN 'milliseconds' THEN floor(extract(epoch FROM b) * 1000) - floor(extract(epoch FROM a) * 1000)
    WHEN 'microseconds' THEN floor(extract(epoch FROM b) * 1000000) - floor(extract(epoch FROM a) * 1000000)
  END;
END $$;

-- TRUNC(timestamp): the date.
CREATE OR REPLACE FUNCTION sandbox_sys.trunc(ts timestamp) RETURNS date
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT ts::date $$;

-- LAST_DAY(date): the month's last day.
CREATE OR REPLACE FUNCTION sandbox_sys.last_day(d date) RETURNS date
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date $$;

-- ADD_MONTHS(date, n): unlike DATEADD, the last day of a month stays the
-- last day (ADD_MONTHS('2008-02-29', 1) is 2008-03-31).
CREATE OR REPLACE FUNCTION sandbox_sys.add_months(ts timestamp, n bigint) RETURNS timestamp
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN ts::date = sandbox_sys.last_day(ts::date)
    THEN sandbox_sys.last_day((ts + n * interval '1 month')::date) + ts::time
    ELSE ts + n * interval '1 month' END $$;

-- MONTHS_BETWEEN(date1, date2): whole when the days of month match or both
-- are month ends, else the difference in days counts as 31sts of a month.
CREATE OR REPLACE FUNCTION sandbox_sys.months_between(a date, b date)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT ((extract(year FROM a) - extract(year FROM b)) * 12
          + extract(month FROM a) - extract(month FROM b))::double precision
    + CASE WHEN extract(day FROM a) = extract(day FROM b)
             OR (a = sandbox_sys.last_day(a) AND b = sandbox_sys.last_day(b))
        THEN 0
        ELSE (extract(day FROM a) - extract(day FROM b))::double precision / 31 END $$;

-- NEXT_DAY(date, day): the first such weekday after the date.
CREATE OR REPLACE FUNCTION sandbox_sys.next_day(d date, day text) RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  w text := lower(left(btrim(day), 2));
  target int := CASE
    WHEN w = 'su' THEN 0 WHEN w IN ('m', 'mo') THEN 1 WHEN w = 'tu' THEN 2
    WHEN w IN ('w', 'we') THEN 3 WHEN w = 'th' THEN 4 WHEN w IN ('f', 'fr') THEN 5
    WHEN w = 'sa' THEN 6 END;
BEGIN
  IF target IS NULL THEN
    RAISE EXCEPTION 'Invalid day name: "%"', day USING ERRCODE = '22023';
  END IF;
  RETURN d + ((target - extract(dow FROM d)::int + 6) % 7) + 1;
END $$;

-- CONVERT_TIMEZONE([source,] target, timestamp); the source is UTC when
-- left out.
CREATE OR REPLACE FUNCTION sandbox_sys.convert_timezone(target text, ts timestamp)
RETURNS timestamp LANGUAGE sql STABLE STRICT AS $$
  SELECT (ts AT TIME ZONE 'UTC') AT TIME ZONE target $$;
CREATE OR REPLACE FUNCTION sandbox_sys.convert_timezone(source text, target text, ts timestamp)
RETURNS timestamp LANGUAGE sql STABLE STRICT AS $$
  SELECT (ts AT TIME ZONE source) AT TIME ZONE target $$;

-- Strings.
CREATE OR REPLACE FUNCTION sandbox_sys.len(s text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT length(s) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.charindex(sub text, s text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT strpos(s, sub) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.replicate(s text, n integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT repeat(s, n) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.strtol(s text, base integer) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  t text := lower(btrim(s));
  neg boolean := false;
  result bigint := 0;
  digit int;
  c text;
BEGIN
  IF left(t, 1) IN ('-', '+') THEN
    neg := left(t, 1) = '-';
    t := substr(t, 2);
  END IF;
  IF base = 16 AND left(t, 2) = '0x' THEN
    t := substr(t, 3);
  END IF;
  FOREACH c IN ARRAY regexp_split_to_array(t, '') LOOP
    digit := strpos('0123456789abcdefghijklmnopqrstuvwxyz', c) - 1;
    EXIT WHEN digit < 0 OR digit >= base;
    result := result * base + digit;
  END LOOP;
  RETURN CASE WHEN neg THEN -result ELSE result END;
END $$;
-- Redshift's REGEXP_REPLACE replaces every match; PostgreSQL's only the first.
CREATE OR REPLACE FUNCTION sandbox_sys.regexp_replace(s text, p text, r text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_catalog.regexp_replace(s, p, r, 'g') $$;
CREATE OR REPLACE FUNCTION sandbox_sys.regexp_replace(s text, p text, r text, pos integer)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT pg_catalog.regexp_replace(s, p, r, pos, 0) $$;

-- Mathematics.
CREATE OR REPLACE FUNCTION sandbox_sys.dlog10(x double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT log(x) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.dlog1(x double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT ln(x) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.dexp(x double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT exp(x) $$;

-- JSON held in text, as Redshift's JSON functions take it.
CREATE OR REPLACE FUNCTION sandbox_sys.is_valid_json(j text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN json_typeof(j::json) = 'object';
EXCEPTION WHEN others THEN
  RETURN false;
END $$;
CREATE OR REPLACE FUNCTION sandbox_sys.is_valid_json_array(j text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN json_typeof(j::json) = 'array';
EXCEPTION WHEN others THEN
  RETURN false;
END $$;
CREATE OR REPLACE FUNCTION sandbox_sys.json_extract_path_text(j text, VARIADIC path text[])
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT coalesce(j::json #>> path, '') $$;
CREATE OR REPLACE FUNCTION sandbox_sys.json_array_length(j text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT json_array_length(j::json) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.json_extract_array_element_text(j text, pos integer)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN pos < 0 THEN '' ELSE coalesce(j::json ->> pos, '') END $$;
CREATE OR REPLACE FUNCTION sandbox_sys.json_parse(j text) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT j::jsonb $$;

-- System views readers query after a load, with Redshift's column names.
-- A table's exact row count (svv_table_info's tbl_rows): PostgreSQL's own
-- statistics lag behind a load, and a reader checks the count right after.
CREATE OR REPLACE FUNCTION sandbox_sys.table_rows(t oid) RETURNS bigint
LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s', t::regclass) INTO n;
  RETURN n;
END $$;
CREATE OR REPLACE VIEW sandbox_sys.svv_tables AS
  SELECT table_catalog::text AS table_catalog, table_schema::text AS table_schema,
         table_name::text AS table_name, table_type::text AS table_type,
         NULL::text AS remarks
  FROM information_schema.tables
  WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'sandbox_sys');
CREATE OR REPLACE VIEW sandbox_sys.svv_columns AS
  SELECT table_catalog::text AS table_catalog, table_schema::text AS table_schema,
         table_name::text AS table_name, column_name::text AS column_name,
         ordinal_position::integer AS ordinal_position,
         column_default::text AS column_default, is_nullable::text AS is_nullable,
         data_type::text AS data_type,
         character_maximum_length::integer AS character_maximum_length,
         numeric_precision::integer AS numeric_precision,
         numeric_scale::integer AS numeric_scale, NULL::text AS remarks
  FROM information_schema.columns
  WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'sandbox_sys');
-- What each CREATE TABLE said of its physical design (the engine writes a
-- row as the table is made): PostgreSQL has no place for it, and the views
-- below report it as Redshift does.
CREATE TABLE IF NOT EXISTS sandbox_sys.table_design (
  table_oid oid, diststyle text, distkey text, sortkeys text[], interleaved boolean,
  enc_columns text[], enc_types text[]);
-- A table's design row: the newest, should an oid come back.
CREATE OR REPLACE FUNCTION sandbox_sys.design_of(t oid) RETURNS sandbox_sys.table_design
LANGUAGE sql STABLE AS $$
  SELECT * FROM sandbox_sys.table_design d WHERE d.table_oid = t ORDER BY ctid DESC LIMIT 1 $$;
CREATE OR REPLACE VIEW sandbox_sys.pg_table_def AS
  SELECT n.nspname::text AS schemaname, c.relname::text AS tablename,
         a.attname::text AS "column",
         format_type(a.atttypid, a.atttypmod)::text AS type,
         COALESCE(d.enc_types[array_position(d.enc_columns, a.attname::text)], 'none')::text AS encoding,
         COALESCE(d.distkey = a.attname::text, false) AS distkey,
         COALESCE(array_position(d.sortkeys, a.attname::text), 0) AS sortkey,
         a.attnotnull AS notnull
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN LATERAL sandbox_sys.design_of(c.oid) d ON true
  WHERE c.relkind = 'r'
    AND n.nspname = ANY (current_schemas(false))
    AND n.nspname <> 'sandbox_sys';
CREATE OR REPLACE VIEW sandbox_sys.svv_table_info AS
  SELECT current_database()::text AS database, n.nspname::text AS schema,
         c.oid::integer AS table_id, c.relname::text AS "table",
         CASE WHEN cardinality(d.enc_types) > 0 THEN 'Y' ELSE 'N' END::text AS encoded,
         CASE WHEN d.distkey IS NOT NULL THEN 'KEY(' || d.distkey || ')'
              WHEN d.diststyle IN ('EVEN', 'ALL') THEN d.diststyle
              ELSE 'AUTO(EVEN)' END::text AS diststyle,
         CASE WHEN d.interleaved THEN 'INTERLEAVED' ELSE d.sortkeys[1] END::text AS sortkey1,
         COALESCE(cardinality(d.sortkeys), 0) AS sortkey_num,
         greatest(1, (pg_total_relation_size(c.oid) / 1048576))::bigint AS size,
         0::numeric(10, 4) AS pct_used, 0::numeric(10, 4) AS unsorted,
         0::numeric(10, 4) AS stats_off,
         sandbox_sys.table_rows(c.oid)::numeric(38, 0) AS tbl_rows,
         NULL::timestamp AS create_time
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN LATERAL sandbox_sys.design_of(c.oid) d ON true
  WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'sandbox_sys', 'pg_toast');
-- One node with two slices: the smallest cluster's layout.
CREATE OR REPLACE VIEW sandbox_sys.stv_slices AS
  SELECT 0 AS node, s AS slice, s AS localslice, 'D'::text AS type
  FROM generate_series(0, 1) AS s;

-- The statements run, written by the engine as each request ends.
CREATE TABLE IF NOT EXISTS sandbox_sys.sys_query_history (
  query_id bigint, user_name text, query_text text, status text,
  start_time timestamp, end_time timestamp, elapsed_time bigint,
  returned_rows bigint, error_message text);
CREATE OR REPLACE VIEW sandbox_sys.stl_query AS
  SELECT 100 AS userid, query_id::integer AS query, ''::text AS label, 0::bigint AS xid,
         0 AS pid, current_database()::text AS database, query_text AS querytxt,
         start_time AS starttime, end_time AS endtime,
         (status = 'canceled')::integer AS aborted
  FROM sandbox_sys.sys_query_history;

-- The objects each COPY loaded, written by the COPY as it commits.
CREATE TABLE IF NOT EXISTS sandbox_sys.stl_load_commits (
  userid integer, query integer, slice integer, name character(256),
  filename character(256), byte_offset integer, lines_scanned integer,
  errors integer, curtime timestamp, status integer, file_format character(16),
  is_partial integer, start_offset bigint);

-- Hashes (SQL reference, "Hash functions").
-- CRC32: CRC-32C (Castagnoli), as the reference says, of the UTF-8 bytes,
-- as 8 hex digits.
CREATE OR REPLACE FUNCTION sandbox_sys.crc32(s text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  bytes bytea := convert_to(s, 'UTF8');
  crc bigint := 4294967295;
BEGIN
  FOR i IN 0 .. length(bytes) - 1 LOOP
    crc := crc # get_byte(bytes, i);
    FOR k IN 1 .. 8 LOOP
      IF crc & 1 = 1 THEN
        crc := (crc >> 1) # 2197175160;  -- 0x82F63B78
      ELSE
        crc := crc >> 1;
      END IF;
    END LOOP;
  END LOOP;
  RETURN lpad(to_hex(crc # 4294967295), 8, '0');
END $$;
-- SHA2(string, bits): 0 is 256; any other number of bits gives ''.
CREATE OR REPLACE FUNCTION sandbox_sys.sha2(s text, bits integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE bits
    WHEN 0 THEN encode(sha256(convert_to(s, 'UTF8')), 'hex')
    WHEN 224 THEN encode(sha224(convert_to(s, 'UTF8')), 'hex')
    WHEN 256 THEN encode(sha256(convert_to(s, 'UTF8')), 'hex')
    WHEN 384 THEN encode(sha384(convert_to(s, 'UTF8')), 'hex')
    WHEN 512 THEN encode(sha512(convert_to(s, 'UTF8')), 'hex')
    ELSE '' END $$;
-- FNV_HASH(value [, seed]): 64-bit FNV-1a of the value's binary form (an
-- INTEGER's 4 bytes, a BIGINT's 8, little-endian; a string's UTF-8
-- bytes), the seed in place of the offset basis, as a signed BIGINT.
CREATE OR REPLACE FUNCTION sandbox_sys.fnv_bytes(bytes bytea, seed bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  two64 numeric := 18446744073709551616;
  h numeric := CASE WHEN seed < 0 THEN seed + 18446744073709551616 ELSE seed END;
  low bigint;
BEGIN
  FOR i IN 0 .. length(bytes) - 1 LOOP
    -- XOR touches the low byte only.
    low := (h % 256)::bigint # get_byte(bytes, i);
    h := ((h - h % 256 + low) * 1099511628211) % two64;
  END LOOP;
  RETURN (CASE WHEN h >= 9223372036854775808 THEN h - two64 ELSE h END)::bigint;
END $$;
-- The low `width` bytes of n, least significant first (int8send is
-- big-endian).
CREATE OR REPLACE FUNCTION sandbox_sys.le_bytes(n bigint, width integer) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  b bytea := int8send(n);
  out bytea := '';
BEGIN
  FOR i IN 0 .. width - 1 LOOP
    out := out || substring(b FROM 8 - i FOR 1);
  END LOOP;
  RETURN out;
END $$;
CREATE OR REPLACE FUNCTION sandbox_sys.fnv_hash(s text, seed bigint DEFAULT -3750763034362895579)
  RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT sandbox_sys.fnv_bytes(convert_to(s, 'UTF8'), seed) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.fnv_hash(n integer, seed bigint DEFAULT -3750763034362895579)
  RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT sandbox_sys.fnv_bytes(sandbox_sys.le_bytes(n, 4), seed) $$;
CREATE OR REPLACE FUNCTION sandbox_sys.fnv_hash(n bigint, seed bigint DEFAULT -3750763034362895579)
  RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT sandbox_sys.fnv_bytes(sandbox_sys.le_bytes(n, 8), seed) $$;

-- A session setting the engine sets (`sandbox.…`), or `fallback` when it
-- has not.
CREATE OR REPLACE FUNCTION sandbox_sys.setting_or(name text, fallback text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT COALESCE(NULLIF(current_setting(name, true), ''), fallback) $$;
-- Who and where (SQL reference, "System information functions"): the
-- request's DbUser and Database, which the engine sets on each connection.
CREATE OR REPLACE FUNCTION sandbox_sys.db_user() RETURNS name
LANGUAGE sql STABLE AS $$ SELECT sandbox_sys.setting_or('sandbox.db_user', 'awsuser')::name $$;
CREATE OR REPLACE FUNCTION sandbox_sys.current_database() RETURNS name
LANGUAGE sql STABLE AS $$ SELECT sandbox_sys.setting_or('sandbox.database', 'dev')::name $$;
CREATE OR REPLACE FUNCTION sandbox_sys.version() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT 'PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 '
         '(Red Hat 3.4.2-6.fc3), Redshift 1.0 (the redshift-sandbox on '
         || split_part(pg_catalog.version(), ' on ', 1) || ')' $$;
-- PG_USER lists the request's user, as the one user the sandbox knows.
CREATE OR REPLACE VIEW sandbox_sys.pg_user AS
  SELECT sandbox_sys.db_user() AS usename, 100 AS usesysid, true AS usecreatedb,
         true AS usesuper, false AS usecatupd, '********'::text AS passwd,
         NULL::timestamp AS valuntil, NULL::text[] AS useconfig;

-- REGEXP_REPLACE(source, pattern): the replacement defaults to '', every
-- match removed.
CREATE OR REPLACE FUNCTION sandbox_sys.regexp_replace(s text, p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_catalog.regexp_replace(s, p, '', 'g') $$;
-- DATE_TRUNC of a DATE is a TIMESTAMP in Redshift (PostgreSQL would make
-- the date a timestamp with time zone first).
CREATE OR REPLACE FUNCTION sandbox_sys.date_trunc(part text, d date) RETURNS timestamp
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_catalog.date_trunc(part, d::timestamp) $$;

-- SUPER (SQL reference, "SUPER type information functions" and
-- JSON_SERIALIZE): a SUPER value is a jsonb here.
CREATE OR REPLACE FUNCTION sandbox_sys.json_typeof(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT jsonb_typeof(j) $$;
-- The length of an array; NULL for anything else.
CREATE OR REPLACE FUNCTION sandbox_sys.get_array_length(j jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN jsonb_typeof(j) = 'array' THEN jsonb_array_length(j) END $$;
-- JSON text with no spaces between the parts, as Redshift writes it.
CREATE OR REPLACE FUNCTION sandbox_sys.json_serialize(j jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  CASE jsonb_typeof(j)
    WHEN 'object' THEN
      RETURN '{' || COALESCE((SELECT string_agg(to_jsonb(key)::text || ':'
        || sandbox_sys.json_serialize(value), ',' ORDER BY ord)
        FROM jsonb_each(j) WITH ORDINALITY AS e(key, value, ord)), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || COALESCE((SELECT string_agg(sandbox_sys.json_serialize(value), ',' ORDER BY ord)
        FROM jsonb_array_elements(j) WITH ORDINALITY AS e(value, ord)), '') || ']';
    ELSE
      RETURN j::text;
  END CASE;
END $$;

-- Aggregates as window functions (MEDIAN, PERCENTILE_CONT … OVER): an
-- ordered-set aggregate cannot be a window function in PostgreSQL, so the
-- window's values are gathered into an array and the percentile taken of
-- that. The state's first element is the percentile wanted.
CREATE OR REPLACE FUNCTION sandbox_sys.pct_state(state double precision[], v double precision,
    p double precision) RETURNS double precision[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN state IS NULL OR cardinality(state) = 0 THEN ARRAY[p, v] ELSE state || v END $$;
CREATE OR REPLACE FUNCTION sandbox_sys.pct_final(state double precision[]) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
  SELECT percentile_cont(state[1]) WITHIN GROUP (ORDER BY v)
  FROM unnest(state[2:]) AS v $$;
CREATE OR REPLACE AGGREGATE sandbox_sys.percentile_cont_w(double precision, double precision) (
  SFUNC = sandbox_sys.pct_state, STYPE = double precision[],
  FINALFUNC = sandbox_sys.pct_final, INITCOND = '{}');

-- The last COPY of this session (SQL reference, PG_LAST_COPY_COUNT and
-- PG_LAST_COPY_ID): 0 rows and id -1 when there was none.
CREATE OR REPLACE FUNCTION sandbox_sys.pg_last_copy_count() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT sandbox_sys.setting_or('sandbox.last_copy_count', '0')::bigint $$;
CREATE OR REPLACE FUNCTION sandbox_sys.pg_last_copy_id() RETURNS integer
LANGUAGE sql STABLE AS $$ SELECT sandbox_sys.setting_or('sandbox.last_copy_id', '-1')::integer $$;

-- FUNC_SHA1 / SHA1: SHA-1 as 40 hex digits, with pgcrypto's digest() when
-- the server has the extension (Debian's and most packages do). Without
-- it, the function says what it needs.
DO $$ BEGIN
  CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA sandbox_sys;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'pgcrypto is not installed: FUNC_SHA1 will say so';
END $$;
CREATE OR REPLACE FUNCTION sandbox_sys.func_sha1(s text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  RETURN encode(sandbox_sys.digest(convert_to(s, 'UTF8'), 'sha1'), 'hex');
EXCEPTION WHEN undefined_function THEN
  RAISE EXCEPTION 'FUNC_SHA1 needs the pgcrypto extension on the sandbox''s PostgreSQL server (package postgresql-contrib on some systems)';
END $$;
CREATE OR REPLACE FUNCTION sandbox_sys.sha1(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT sandbox_sys.func_sha1(s) $$;
