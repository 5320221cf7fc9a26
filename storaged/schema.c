/*
 * The schema of ao.db (DESIGN.md §4), as embedded migrations.  Migration N
 * takes user_version N-1 to N; all pending ones run in one transaction.
 * A migration, once released, is never edited: changes are new migrations.
 *
 * Change capture lives here too: AFTER INSERT/UPDATE triggers write
 * change_log in the transaction of the change.  Update triggers fire only
 * when a watched column changes, so re-writing identical data emits nothing.
 * Event times are the row's own timestamps, set by storaged.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/log.h"
#include "storaged/storaged.h"

static int migrate_in_lists(sqlite3 *, char **msg);

/* A migration is SQL, or (sql NULL) a step in C. */
struct migration {
	const char *sql;
	int (*fn)(sqlite3 *, char **msg);
};

static const struct migration migrations[] = {
	/* 1: the initial schema. */
	{ 
	"CREATE TABLE projects ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  path TEXT NOT NULL,"
	"  origin_url TEXT,"
	"  display_name TEXT,"
	"  registered_at INTEGER NOT NULL,"
	"  archived_at INTEGER"
	");"
	"CREATE TABLE sessions ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	"  num INTEGER NOT NULL CHECK (num >= 1),"
	"  issue_id TEXT,"
	"  kind TEXT NOT NULL DEFAULT 'worker'"
	"    CONSTRAINT kind CHECK (kind IN ('worker','orchestrator')),"
	"  harness TEXT,"
	"  runtime TEXT NOT NULL DEFAULT 'tmux'"
	"    CONSTRAINT runtime CHECK (runtime IN ('tmux','process')),"
	"  state TEXT NOT NULL DEFAULT 'not_started'"
	"    CONSTRAINT state CHECK (state IN ('not_started','working','idle',"
	"      'needs_input','stuck','detecting','done','terminated')),"
	"  termination_reason TEXT"
	"    CONSTRAINT termination_reason CHECK (termination_reason IN"
	"      ('manually_killed','runtime_lost','agent_process_exited',"
	"       'probe_failure','error_in_process','auto_cleanup','pr_merged')),"
	"  is_alive INTEGER NOT NULL DEFAULT 0 CHECK (is_alive IN (0, 1)),"
	"  activity_state TEXT"
	"    CONSTRAINT activity_state CHECK (activity_state IN ('active','ready',"
	"      'idle','waiting_input','blocked','exited')),"
	"  activity_at INTEGER,"
	"  activity_source TEXT,"
	"  detecting_attempts INTEGER NOT NULL DEFAULT 0,"
	"  detecting_started_at INTEGER,"
	"  detecting_evidence_hash TEXT,"
	"  branch TEXT,"
	"  workspace_path TEXT,"
	"  runtime_handle TEXT,"
	"  agent_session_id TEXT,"
	"  prompt TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  UNIQUE (project_id, num),"
	"  CONSTRAINT termination_reason_iff_terminated"
	"    CHECK ((state = 'terminated') = (termination_reason IS NOT NULL))"
	");"
	"CREATE TABLE pr ("
	"  url TEXT PRIMARY KEY NOT NULL,"
	"  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
	"  number INTEGER NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'open'"
	"    CONSTRAINT state CHECK (state IN ('draft','open','merged','closed')),"
	"  review_decision TEXT NOT NULL DEFAULT 'none'"
	"    CONSTRAINT review_decision CHECK (review_decision IN ('none',"
	"      'approved','changes_requested','review_required')),"
	"  ci_state TEXT NOT NULL DEFAULT 'unknown'"
	"    CONSTRAINT ci_state CHECK (ci_state IN ('unknown','pending',"
	"      'passing','failing')),"
	"  mergeability TEXT NOT NULL DEFAULT 'unknown'"
	"    CONSTRAINT mergeability CHECK (mergeability IN ('unknown',"
	"      'mergeable','conflicting','blocked','unstable')),"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL"
	");"
	"CREATE INDEX pr_session ON pr(session_id);"
	"CREATE TABLE pr_checks ("
	"  pr_url TEXT NOT NULL REFERENCES pr(url) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  commit_hash TEXT NOT NULL,"
	"  status TEXT NOT NULL"
	"    CONSTRAINT status CHECK (status IN ('unknown','queued','in_progress',"
	"      'passed','failed','skipped','cancelled')),"
	"  url TEXT,"
	"  log_tail TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (pr_url, name, commit_hash)"
	");"
	/* The CI-brake query: newest runs of one check first. */
	"CREATE INDEX pr_checks_newest ON pr_checks(pr_url, name, created_at);"
	"CREATE TABLE pr_comment ("
	"  pr_url TEXT NOT NULL REFERENCES pr(url) ON DELETE CASCADE,"
	"  comment_id TEXT NOT NULL,"
	"  author TEXT,"
	"  file TEXT,"
	"  line INTEGER,"
	"  body TEXT NOT NULL,"
	"  resolved INTEGER NOT NULL DEFAULT 0 CHECK (resolved IN (0, 1)),"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (pr_url, comment_id)"
	");"
	"CREATE TABLE reaction_trackers ("
	"  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
	"  reaction TEXT NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
	"  first_at INTEGER,"
	"  last_at INTEGER,"
	"  signature TEXT,"
	"  escalated INTEGER NOT NULL DEFAULT 0 CHECK (escalated IN (0, 1)),"
	"  PRIMARY KEY (session_id, reaction)"
	");"
	"CREATE TABLE notifications ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,"
	"  session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,"
	"  priority TEXT NOT NULL"
	"    CONSTRAINT priority CHECK (priority IN ('urgent','action','info')),"
	"  reaction TEXT,"
	"  message TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE INDEX notifications_session ON notifications(session_id);"
	"CREATE TABLE consumer_offsets ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  seq INTEGER NOT NULL CHECK (seq >= 0),"
	"  updated_at INTEGER NOT NULL"
	");"
	"CREATE TABLE change_log ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  project_id TEXT,"
	"  session_id TEXT,"
	"  type TEXT NOT NULL"
	"    CONSTRAINT type CHECK (type IN ('session_created','session_updated',"
	"      'pr_created','pr_updated','pr_check_recorded',"
	"      'notification_created','project_added','project_archived')),"
	"  payload TEXT NOT NULL CHECK (json_valid(payload)),"
	"  at INTEGER NOT NULL"
	");"
	"CREATE INDEX change_log_project ON change_log(project_id, seq);"
	"CREATE INDEX change_log_at ON change_log(at);"

	"CREATE TRIGGER project_added AFTER INSERT ON projects BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES (NEW.id, NULL, 'project_added',"
	"    json_object('id', NEW.id, 'path', NEW.path), NEW.registered_at);"
	"END;"
	/* Un-archiving (an upsert of an archived project) announces it again. */
	"CREATE TRIGGER project_readded AFTER UPDATE OF archived_at ON projects"
	"  WHEN OLD.archived_at IS NOT NULL AND NEW.archived_at IS NULL BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES (NEW.id, NULL, 'project_added',"
	"    json_object('id', NEW.id, 'path', NEW.path), NEW.registered_at);"
	"END;"
	"CREATE TRIGGER project_archived AFTER UPDATE OF archived_at ON projects"
	"  WHEN OLD.archived_at IS NULL AND NEW.archived_at IS NOT NULL BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES (NEW.id, NULL, 'project_archived',"
	"    json_object('id', NEW.id, 'path', NEW.path), NEW.archived_at);"
	"END;"

	"CREATE TRIGGER session_created AFTER INSERT ON sessions BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES (NEW.project_id, NEW.id, 'session_created',"
	"    json_object('id', NEW.id, 'state', NEW.state,"
	"      'termination_reason', NEW.termination_reason,"
	"      'is_alive', json(CASE WHEN NEW.is_alive THEN 'true' ELSE 'false' END),"
	"      'activity_state', NEW.activity_state), NEW.created_at);"
	"END;"
	"CREATE TRIGGER session_updated AFTER UPDATE ON sessions"
	"  WHEN OLD.state IS NOT NEW.state"
	"    OR OLD.termination_reason IS NOT NEW.termination_reason"
	"    OR OLD.is_alive IS NOT NEW.is_alive"
	"    OR OLD.activity_state IS NOT NEW.activity_state BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES (NEW.project_id, NEW.id, 'session_updated',"
	"    json_object('id', NEW.id, 'state', NEW.state,"
	"      'termination_reason', NEW.termination_reason,"
	"      'is_alive', json(CASE WHEN NEW.is_alive THEN 'true' ELSE 'false' END),"
	"      'activity_state', NEW.activity_state), NEW.updated_at);"
	"END;"

	"CREATE TRIGGER pr_created AFTER INSERT ON pr BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES ((SELECT project_id FROM sessions WHERE id = NEW.session_id),"
	"    NEW.session_id, 'pr_created',"
	"    json_object('url', NEW.url, 'session_id', NEW.session_id,"
	"      'number', NEW.number, 'state', NEW.state, 'ci_state', NEW.ci_state,"
	"      'review_decision', NEW.review_decision,"
	"      'mergeability', NEW.mergeability), NEW.updated_at);"
	"END;"
	"CREATE TRIGGER pr_updated AFTER UPDATE ON pr"
	"  WHEN OLD.state IS NOT NEW.state OR OLD.ci_state IS NOT NEW.ci_state"
	"    OR OLD.review_decision IS NOT NEW.review_decision"
	"    OR OLD.mergeability IS NOT NEW.mergeability BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES ((SELECT project_id FROM sessions WHERE id = NEW.session_id),"
	"    NEW.session_id, 'pr_updated',"
	"    json_object('url', NEW.url, 'session_id', NEW.session_id,"
	"      'number', NEW.number, 'state', NEW.state, 'ci_state', NEW.ci_state,"
	"      'review_decision', NEW.review_decision,"
	"      'mergeability', NEW.mergeability), NEW.updated_at);"
	"END;"

	"CREATE TRIGGER pr_check_inserted AFTER INSERT ON pr_checks BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  SELECT s.project_id, s.id, 'pr_check_recorded',"
	"    json_object('pr_url', NEW.pr_url, 'name', NEW.name,"
	"      'commit_hash', NEW.commit_hash, 'status', NEW.status), NEW.updated_at"
	"  FROM pr JOIN sessions s ON s.id = pr.session_id WHERE pr.url = NEW.pr_url;"
	"END;"
	"CREATE TRIGGER pr_check_changed AFTER UPDATE ON pr_checks"
	"  WHEN OLD.status IS NOT NEW.status BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  SELECT s.project_id, s.id, 'pr_check_recorded',"
	"    json_object('pr_url', NEW.pr_url, 'name', NEW.name,"
	"      'commit_hash', NEW.commit_hash, 'status', NEW.status), NEW.updated_at"
	"  FROM pr JOIN sessions s ON s.id = pr.session_id WHERE pr.url = NEW.pr_url;"
	"END;"

	"CREATE TRIGGER notification_created AFTER INSERT ON notifications BEGIN"
	"  INSERT INTO change_log(project_id, session_id, type, payload, at)"
	"  VALUES (NEW.project_id, NEW.session_id, 'notification_created',"
	"    json_object('id', NEW.id, 'session_id', NEW.session_id,"
	"      'priority', NEW.priority, 'reaction', NEW.reaction,"
	"      'message', NEW.message), NEW.created_at);"
	"END;", NULL },

	/*
	 * 2: lifecycle bookkeeping for lcmd — the state a detecting session
	 * recovers to, the count of consecutive probes that found it dead —
	 * and the argv of sessions that run a plain command.
	 */
	{ "ALTER TABLE sessions ADD COLUMN state_before_detecting TEXT"
	"  CONSTRAINT state_before_detecting CHECK (state_before_detecting IN"
	"    ('not_started','working','idle','needs_input','stuck'));"
	"ALTER TABLE sessions ADD COLUMN dead_probes INTEGER NOT NULL DEFAULT 0"
	"  CHECK (dead_probes >= 0);"
	/* The argv of a `command` session, as a JSON array of strings. */
	"ALTER TABLE sessions ADD COLUMN command TEXT"
	"  CHECK (command IS NULL OR json_type(command) = 'array');", NULL },

	/*
	 * 3: the janitor walks change_log from its oldest seq, so the index on
	 * `at` only cost every commit a page.
	 */
	{ "DROP INDEX change_log_at;", NULL },

	/*
	 * 4: every CHECK (x IN ('a', 'b', 'c', ...)) becomes (x = 'a' OR ...).
	 * SQLite evaluates an IN list of more than two values by building an
	 * ephemeral index, for every statement that checks it: two of them
	 * (activity_state, change_log's type) took half the instructions of a
	 * session.update.  Same meaning, NULL included; rows are untouched.
	 */
	{ NULL, migrate_in_lists },
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Past the blanks at p. */
static const char *
skip_blanks(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/* Past a bare name at p (letters, digits, _; not a digit first), or p. */
static const char *
skip_name(const char *p)
{
	const char *q = p;

	if (!isalpha((unsigned char)*q) && *q != '_')
		return p;
	while (isalnum((unsigned char)*q) || *q == '_')
		q++;
	return q;
}

/*
 * Past the quoted literal or name at p (its quote doubled inside), or NULL
 * when it is not closed.
 */
static const char *
skip_quoted(const char *p)
{
	const char *q;

	/* A closing quote at the very end returns here too ('\0' follows). */
	for (q = p + 1; *q != '\0'; q++)
		if (*q == *p && *++q != *p)
			return q;
	return NULL;
}

/* Past what is not SQL at p: a quoted literal or name, a comment; or p. */
static const char *
skip_opaque(const char *p)
{
	const char *q;
	char c = *p;

	if (c == '\'' || c == '"' || c == '`')
		return (q = skip_quoted(p)) != NULL ? q : p + strlen(p);
	if (p[0] == '-' && p[1] == '-')
		return p + strcspn(p, "\n");
	if (p[0] == '/' && p[1] == '*')
		return (q = strstr(p + 2, "*/")) != NULL ? q + 2 : p + strlen(p);
	return p;
}

/*
 * If p starts a list of single-quoted literals "('a', 'b'…)", returns the
 * number of literals and sets *end past the ')'; else 0.
 */
static int
in_list(const char *p, const char **end)
{
	int n = 0;

	if (*p++ != '(')
		return 0;
	for (;;) {
		p = skip_blanks(p);
		if (*p != '\'' || (p = skip_quoted(p)) == NULL)
			return 0;
		n++;
		p = skip_blanks(p);
		if (*p == ')') {
			*end = p + 1;
			return n;
		}
		if (*p++ != ',')
			return 0;
	}
}

/*
 * If p starts "CHECK (name IN ('a', 'b', 'c'…))" with three literals or
 * more, writes "CHECK ((name = 'a' OR …))" to f and returns the end of the
 * match; else NULL.  Only that form: NOT IN, COLLATE, an expression or an
 * operator next to the list would change meaning.
 */
static const char *
check_in_list(const char *p, FILE *f)
{
	const char *name, *name_end, *lst, *end, *q, *v;
	int n;

	if (strncasecmp(p, "CHECK", 5) != 0 || skip_name(p) != p + 5)
		return NULL;
	q = skip_blanks(p + 5);
	if (*q++ != '(')
		return NULL;
	name = skip_blanks(q);
	if ((name_end = skip_name(name)) == name)
		return NULL;
	q = skip_blanks(name_end);
	if (strncasecmp(q, "IN", 2) != 0 || skip_name(q) != q + 2)
		return NULL;
	lst = skip_blanks(q + 2);
	if ((n = in_list(lst, &end)) <= 2)
		return NULL;
	end = skip_blanks(end);
	if (*end++ != ')')
		return NULL;
	fputs("CHECK ((", f);
	for (q = lst + 1; n > 0; n--) {
		while (isspace((unsigned char)*q) || *q == ',')
			q++;
		v = q;
		q = skip_opaque(q);
		fwrite(name, (size_t)(name_end - name), 1, f);
		fputs(" = ", f);
		fwrite(v, (size_t)(q - v), 1, f);
		if (n > 1)
			fputs(" OR ", f);
	}
	fputs("))", f);
	return end;
}

char *
schema_in_to_or(const char *sql)
{
	const char *p = sql, *q;
	size_t len = 0;
	char *b = NULL;
	FILE *f;

	if ((f = open_memstream(&b, &len)) == NULL)
		fatal("open_memstream");
	while (*p != '\0') {
		if ((q = skip_opaque(p)) != p) {
			fwrite(p, (size_t)(q - p), 1, f);
			p = q;
		} else if ((q = skip_name(p)) != p) {
			const char *end = check_in_list(p, f);

			if (end != NULL)
				p = end;
			else {
				fwrite(p, (size_t)(q - p), 1, f);
				p = q;
			}
		} else
			fputc(*p++, f);
	}
	if (fclose(f) != 0)
		fatal("open_memstream");
	return b;
}

/*
 * Migration 4: rewrites the tables' CHECK lists in sqlite_schema, the way
 * SQLite documents for changes that leave the stored rows as they are
 * (lang_altertable.html: writable_schema, then a new schema_version).
 */
static int
migrate_in_lists(sqlite3 *db, char **msg)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	sqlite3 *check = NULL;
	char sql[64];
	int rc, version = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA schema_version", -1, &sel, NULL) ==
	    SQLITE_OK && sqlite3_step(sel) == SQLITE_ROW)
		version = sqlite3_column_int(sel, 0);
	sqlite3_finalize(sel);
	sel = NULL;
	if (version < 0) {
		*msg = sqlite3_mprintf("PRAGMA schema_version: %s", sqlite3_errmsg(db));
		return -1;
	}
	/* Each new definition is tried on an empty database before it is written. */
	if (sqlite3_open(":memory:", &check) != SQLITE_OK) {
		*msg = sqlite3_mprintf("opening a database in memory: %s",
		    check != NULL ? sqlite3_errmsg(check) : "out of memory");
		sqlite3_close(check);
		return -1;
	}
	if (sqlite3_exec(db, "PRAGMA writable_schema=ON", NULL, NULL, msg) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_schema"
	    " WHERE type = 'table' AND sql IS NOT NULL", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE sqlite_schema SET sql = ?2"
	    " WHERE type = 'table' AND name = ?1", -1, &upd, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(sel, 0);
		const char *old = (const char *)sqlite3_column_text(sel, 1);
		char *new = schema_in_to_or(old);

		rc = SQLITE_DONE;
		if (strcmp(old, new) != 0) {
			if (sqlite3_exec(check, new, NULL, NULL, NULL) != SQLITE_OK) {
				*msg = sqlite3_mprintf("the new definition of %s does "
				    "not parse: %s", name, sqlite3_errmsg(check));
				free(new);
				goto off;
			}
			sqlite3_bind_text(upd, 1, name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(upd, 2, new, -1, SQLITE_TRANSIENT);
			rc = sqlite3_step(upd);
			sqlite3_reset(upd);
		}
		free(new);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA schema_version = %d", version + 1);
	if (sqlite3_exec(db, sql, NULL, NULL, msg) != SQLITE_OK)
		goto off;
	rc = sqlite3_exec(db, "PRAGMA writable_schema=OFF", NULL, NULL, msg);
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_close(check);
	return rc == SQLITE_OK ? 0 : -1;
fail:
	/* Before anything else runs on db and replaces the message. */
	*msg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
off:
	sqlite3_exec(db, "PRAGMA writable_schema=OFF", NULL, NULL, NULL);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_close(check);
	return -1;
}

int
schema_version(void)
{
	return NMIGRATIONS;
}

static int
user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
schema_migrate(sqlite3 *db, int *too_new, char *err, size_t errlen)
{
	char *msg = NULL, sql[64];
	bool edited = false;
	int v, i;

	*too_new = 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	if (user_version(db, &v) == -1)
		goto fail;
	if (v > NMIGRATIONS) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "the database schema is version %d, newer than "
		    "this ao-storaged knows (%d): upgrade ao or restore a backup",
		    v, NMIGRATIONS);
		*too_new = 1;
		return -1;
	}
	for (i = v; i < NMIGRATIONS; i++) {
		if (migrations[i].sql != NULL ? sqlite3_exec(db, migrations[i].sql,
		    NULL, NULL, &msg) != SQLITE_OK : migrations[i].fn(db, &msg) == -1)
			goto fail;
		if (migrations[i].fn != NULL)
			edited = true;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", NMIGRATIONS);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	/* This connection re-reads the schema it edited (others see the version). */
	if (edited && sqlite3_exec(db, "PRAGMA writable_schema=RESET", NULL, NULL,
	    &msg) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "migrating the schema: %s",
	    msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
