-- A psql session through the coordinator must print exactly what it prints on the data node.
-- The script cleans up after itself so it can run twice against the same server.
\set VERBOSITY verbose
CREATE TYPE tour_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE tour_people (
    id integer PRIMARY KEY,
    name text NOT NULL,
    mood tour_mood,
    born date,
    score numeric(6,2) CHECK (score >= 0)
);
CREATE INDEX tour_people_name ON tour_people (name);
\d tour_people
INSERT INTO tour_people VALUES (1, 'ada', 'happy', '1815-12-10', 99.5), (2, 'alan', 'ok', '1912-06-23', 12);
INSERT INTO tour_people VALUES (3, 'grace', NULL, NULL, NULL) RETURNING *;
SELECT * FROM tour_people ORDER BY id;
SELECT mood, count(*), sum(score), avg(score) FROM tour_people GROUP BY mood ORDER BY mood NULLS FIRST;
-- constraint violations with their SQLSTATE (VERBOSITY verbose prints it)
INSERT INTO tour_people VALUES (1, 'dup', 'sad', NULL, 1);
INSERT INTO tour_people VALUES (4, NULL, 'sad', NULL, 1);
INSERT INTO tour_people VALUES (5, 'neg', 'sad', NULL, -1);
INSERT INTO tour_people VALUES (6, 'bad', 'angry', NULL, 1);
SELECT 1/0;
SELEC 1;
SELECT nosuchcolumn FROM tour_people;
-- notices arrive in order, before the command completes
DO $$ BEGIN RAISE NOTICE 'first'; RAISE WARNING 'second'; RAISE NOTICE 'third'; END $$;
-- session settings and ParameterStatus
SET DateStyle = 'German';
SHOW DateStyle;
SELECT born FROM tour_people WHERE id = 1;
RESET DateStyle;
SET application_name = 'tour';
SHOW application_name;
-- several statements in one Query message
SELECT 1 AS one \; SELECT 2 AS two \; SELECT 'three' AS three;
-- empty query
;
-- transactions: an error aborts the block until ROLLBACK
BEGIN;
UPDATE tour_people SET score = score + 1 WHERE id = 1;
SELECT 1/0;
SELECT 1;
ROLLBACK;
SELECT score FROM tour_people WHERE id = 1;
BEGIN;
UPDATE tour_people SET score = 0 WHERE id = 2;
SAVEPOINT s1;
DELETE FROM tour_people;
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT id, score FROM tour_people ORDER BY id;
-- COPY both ways
COPY tour_people (id, name, mood) FROM STDIN;
10	copy-a	sad
11	copy-b	\N
\.
COPY tour_people (id, name, mood) FROM STDIN (FORMAT csv);
12,"copy, c",happy
\.
COPY (SELECT id, name, mood FROM tour_people ORDER BY id) TO STDOUT;
COPY (SELECT id, name FROM tour_people WHERE id > 10 ORDER BY id) TO STDOUT (FORMAT csv, HEADER);
-- temp tables and prepared statements live in the session
CREATE TEMP TABLE tour_tmp AS SELECT id FROM tour_people WHERE id < 3;
PREPARE tour_q(int) AS SELECT name FROM tour_people WHERE id = $1;
EXECUTE tour_q(2);
SELECT count(*) FROM tour_tmp;
DEALLOCATE tour_q;
-- types
SELECT '{1,2,3}'::int[] AS arr, '{"a": [1, 2]}'::jsonb AS doc, '\xdeadbeef'::bytea AS bin,
       interval '1 day 2 hours' AS iv, 1.5::float8 AS f, true AS b, NULL::text AS n;
\x on
SELECT * FROM tour_people WHERE id = 1;
\x off
\dT tour_mood
-- cleanup
DROP TABLE tour_people;
DROP TYPE tour_mood;
