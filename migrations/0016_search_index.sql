-- Full-text indexes (`searchable` fields): written by scripts/search-migration.mjs.
DROP TRIGGER IF EXISTS app_notes_fts_insert;
--> statement-breakpoint
DROP TRIGGER IF EXISTS app_notes_fts_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS app_notes_fts_update;
--> statement-breakpoint
DROP TABLE IF EXISTS app_notes_fts;
--> statement-breakpoint
CREATE VIRTUAL TABLE app_notes_fts USING fts5(title, tags, content = 'app_notes', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
--> statement-breakpoint
CREATE TRIGGER app_notes_fts_insert AFTER INSERT ON app_notes BEGIN INSERT INTO app_notes_fts (rowid, title, tags) VALUES (new.rowid, new.title, new.tags); END;
--> statement-breakpoint
CREATE TRIGGER app_notes_fts_delete AFTER DELETE ON app_notes BEGIN INSERT INTO app_notes_fts (app_notes_fts, rowid, title, tags) VALUES ('delete', old.rowid, old.title, old.tags); END;
--> statement-breakpoint
CREATE TRIGGER app_notes_fts_update AFTER UPDATE OF title, tags ON app_notes BEGIN INSERT INTO app_notes_fts (app_notes_fts, rowid, title, tags) VALUES ('delete', old.rowid, old.title, old.tags); INSERT INTO app_notes_fts (rowid, title, tags) VALUES (new.rowid, new.title, new.tags); END;
--> statement-breakpoint
INSERT INTO app_notes_fts (app_notes_fts) VALUES ('rebuild');
--> statement-breakpoint
DROP TRIGGER IF EXISTS app_posts_fts_insert;
--> statement-breakpoint
DROP TRIGGER IF EXISTS app_posts_fts_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS app_posts_fts_update;
--> statement-breakpoint
DROP TABLE IF EXISTS app_posts_fts;
--> statement-breakpoint
CREATE VIRTUAL TABLE app_posts_fts USING fts5(text, content = 'app_posts', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
--> statement-breakpoint
CREATE TRIGGER app_posts_fts_insert AFTER INSERT ON app_posts BEGIN INSERT INTO app_posts_fts (rowid, text) VALUES (new.rowid, new.text); END;
--> statement-breakpoint
CREATE TRIGGER app_posts_fts_delete AFTER DELETE ON app_posts BEGIN INSERT INTO app_posts_fts (app_posts_fts, rowid, text) VALUES ('delete', old.rowid, old.text); END;
--> statement-breakpoint
CREATE TRIGGER app_posts_fts_update AFTER UPDATE OF text ON app_posts BEGIN INSERT INTO app_posts_fts (app_posts_fts, rowid, text) VALUES ('delete', old.rowid, old.text); INSERT INTO app_posts_fts (rowid, text) VALUES (new.rowid, new.text); END;
--> statement-breakpoint
INSERT INTO app_posts_fts (app_posts_fts) VALUES ('rebuild');
