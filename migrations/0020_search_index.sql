-- Full-text indexes, counts (`field.count`), event triggers and after-hook listeners: written by scripts/search-migration.mjs.
DROP TRIGGER IF EXISTS "app_comments_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_comments_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_comments_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_comments_event_delete";
--> statement-breakpoint
CREATE TRIGGER "app_comments_event_create" AFTER INSERT ON "app_comments" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('comments.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('comments.create', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'post_id', NEW."post_id", 'reply_to', NEW."reply_to", 'text', NEW."text"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_comments_event_update" AFTER UPDATE ON "app_comments" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('comments.update', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('comments.update', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'post_id', NEW."post_id", 'reply_to', NEW."reply_to", 'text', NEW."text"), json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'post_id', OLD."post_id", 'reply_to', OLD."reply_to", 'text', OLD."text"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_comments_event_delete" AFTER DELETE ON "app_comments" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('comments.delete', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('comments.delete', OLD.id, NULL, json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'post_id', OLD."post_id", 'reply_to', OLD."reply_to", 'text', OLD."text"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_items_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_items_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_items_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_items_event_delete";
--> statement-breakpoint
CREATE TRIGGER "app_items_event_create" AFTER INSERT ON "app_items" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('items.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('items.create', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'team_id', NEW."team_id", 'list_id', NEW."list_id", 'text', NEW."text", 'done', NEW."done"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_items_event_update" AFTER UPDATE ON "app_items" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('items.update', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('items.update', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'team_id', NEW."team_id", 'list_id', NEW."list_id", 'text', NEW."text", 'done', NEW."done"), json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'team_id', OLD."team_id", 'list_id', OLD."list_id", 'text', OLD."text", 'done', OLD."done"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_items_event_delete" AFTER DELETE ON "app_items" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('items.delete', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('items.delete', OLD.id, NULL, json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'team_id', OLD."team_id", 'list_id', OLD."list_id", 'text', OLD."text", 'done', OLD."done"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_lists_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_lists_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_lists_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_lists_event_delete";
--> statement-breakpoint
CREATE TRIGGER "app_lists_event_create" AFTER INSERT ON "app_lists" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('lists.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('lists.create', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'team_id', NEW."team_id", 'title', NEW."title"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_lists_event_update" AFTER UPDATE ON "app_lists" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('lists.update', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('lists.update', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'team_id', NEW."team_id", 'title', NEW."title"), json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'team_id', OLD."team_id", 'title', OLD."title"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_lists_event_delete" AFTER DELETE ON "app_lists" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('lists.delete', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('lists.delete', OLD.id, NULL, json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'team_id', OLD."team_id", 'title', OLD."title"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_notes_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_notes_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_notes_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_notes_event_delete";
--> statement-breakpoint
CREATE TRIGGER "app_notes_event_create" AFTER INSERT ON "app_notes" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('notes.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('notes.create', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'title', NEW."title", 'body', NEW."body", 'pinned', NEW."pinned", 'tags', NEW."tags", 'list_id', NEW."list_id"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_notes_event_update" AFTER UPDATE ON "app_notes" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('notes.update', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('notes.update', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'title', NEW."title", 'body', NEW."body", 'pinned', NEW."pinned", 'tags', NEW."tags", 'list_id', NEW."list_id"), json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'title', OLD."title", 'body', OLD."body", 'pinned', OLD."pinned", 'tags', OLD."tags", 'list_id', OLD."list_id"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_notes_event_delete" AFTER DELETE ON "app_notes" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('notes.delete', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('notes.delete', OLD.id, NULL, json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'title', OLD."title", 'body', OLD."body", 'pinned', OLD."pinned", 'tags', OLD."tags", 'list_id', OLD."list_id"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_posts_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_posts_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_posts_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "app_posts_event_delete";
--> statement-breakpoint
CREATE TRIGGER "app_posts_event_create" AFTER INSERT ON "app_posts" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('posts.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('posts.create', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'text', NEW."text", 'image_file_id', NEW."image_file_id", 'from_note_id', NEW."from_note_id", 'comment_count', NEW."comment_count"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_posts_event_update" AFTER UPDATE ON "app_posts" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('posts.update', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('posts.update', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'created_at', NEW."created_at", 'updated_at', NEW."updated_at", 'version', NEW."version", 'text', NEW."text", 'image_file_id', NEW."image_file_id", 'from_note_id', NEW."from_note_id", 'comment_count', NEW."comment_count"), json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'text', OLD."text", 'image_file_id', OLD."image_file_id", 'from_note_id', OLD."from_note_id", 'comment_count', OLD."comment_count"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "app_posts_event_delete" AFTER DELETE ON "app_posts" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('posts.delete', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('posts.delete', OLD.id, NULL, json_object('id', OLD."id", 'owner_id', OLD."owner_id", 'created_at', OLD."created_at", 'updated_at', OLD."updated_at", 'version', OLD."version", 'text', OLD."text", 'image_file_id', OLD."image_file_id", 'from_note_id', OLD."from_note_id", 'comment_count', OLD."comment_count"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
DELETE FROM event_listeners WHERE source = 'hook';
--> statement-breakpoint
DELETE FROM event_listeners WHERE source = 'hook';
--> statement-breakpoint
INSERT INTO event_listeners (event, source) VALUES ('comments.create', 'hook'), ('users.create', 'hook');
--> statement-breakpoint
DROP TRIGGER IF EXISTS "files_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "files_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "files_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "files_event_delete";
--> statement-breakpoint
CREATE TRIGGER "files_event_create" AFTER INSERT ON "files" WHEN NEW."status" = 'ready' AND EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('files.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('files.create', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'name', NEW."name", 'content_type', NEW."content_type", 'size', NEW."size", 'visibility', NEW."visibility", 'team_id', NEW."team_id", 'created_at', NEW."created_at"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "files_event_ready" AFTER UPDATE OF "status" ON "files" WHEN NEW."status" = 'ready' AND OLD."status" <> 'ready' AND EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('files.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('files.create', NEW.id, json_object('id', NEW."id", 'owner_id', NEW."owner_id", 'name', NEW."name", 'content_type', NEW."content_type", 'size', NEW."size", 'visibility', NEW."visibility", 'team_id', NEW."team_id", 'created_at', NEW."created_at"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "users_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "users_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "users_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "users_event_delete";
--> statement-breakpoint
CREATE TRIGGER "users_event_create" AFTER INSERT ON "users" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('users.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('users.create', NEW.id, json_object('id', NEW."id", 'email', NEW."email", 'email_verified', NEW."email_verified", 'name', NEW."name", 'anonymous', NEW."anonymous", 'created_at', NEW."created_at"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "users_event_delete" AFTER DELETE ON "users" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('users.delete', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('users.delete', OLD.id, NULL, json_object('id', OLD."id", 'email', OLD."email", 'email_verified', OLD."email_verified", 'name', OLD."name", 'anonymous', OLD."anonymous", 'created_at', OLD."created_at"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
