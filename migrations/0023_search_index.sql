-- Full-text indexes, counts (`field.count`), event triggers and after-hook listeners: written by scripts/search-migration.mjs.
DROP TRIGGER IF EXISTS "users_event_create";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "users_event_ready";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "users_event_update";
--> statement-breakpoint
DROP TRIGGER IF EXISTS "users_event_delete";
--> statement-breakpoint
CREATE TRIGGER "users_event_create" AFTER INSERT ON "users" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('users.create', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('users.create', NEW.id, json_object('id', NEW."id", 'email', NEW."email", 'email_verified', NEW."email_verified", 'name', NEW."name", 'anonymous', NEW."anonymous", 'locale', NEW."locale", 'created_at', NEW."created_at"), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
--> statement-breakpoint
CREATE TRIGGER "users_event_delete" AFTER DELETE ON "users" WHEN EXISTS (SELECT 1 FROM event_listeners WHERE event IN ('users.delete', '*')) BEGIN INSERT INTO events (event, record_id, record, previous, at) VALUES ('users.delete', OLD.id, NULL, json_object('id', OLD."id", 'email', OLD."email", 'email_verified', OLD."email_verified", 'name', OLD."name", 'anonymous', OLD."anonymous", 'locale', OLD."locale", 'created_at', OLD."created_at"), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')); END;
