-- Full-text indexes (`searchable` fields) and counts (`field.count`): written by scripts/search-migration.mjs.
DROP TRIGGER IF EXISTS app_posts_comment_count_insert;
--> statement-breakpoint
DROP TRIGGER IF EXISTS app_posts_comment_count_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS app_posts_comment_count_move;
--> statement-breakpoint
CREATE TRIGGER app_posts_comment_count_insert AFTER INSERT ON app_comments WHEN new.post_id IS NOT NULL BEGIN UPDATE app_posts SET comment_count = comment_count + 1, version = version + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = new.post_id; DELETE FROM record_changes WHERE collection = 'posts' AND record_id = new.post_id; INSERT INTO record_changes (collection, record_id, owner_id, team_id, version, deleted, changed_at) SELECT 'posts', id, owner_id, NULL, version, 0, updated_at FROM app_posts WHERE id = new.post_id; END;
--> statement-breakpoint
CREATE TRIGGER app_posts_comment_count_delete AFTER DELETE ON app_comments WHEN old.post_id IS NOT NULL BEGIN UPDATE app_posts SET comment_count = comment_count - 1, version = version + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = old.post_id; DELETE FROM record_changes WHERE collection = 'posts' AND record_id = old.post_id; INSERT INTO record_changes (collection, record_id, owner_id, team_id, version, deleted, changed_at) SELECT 'posts', id, owner_id, NULL, version, 0, updated_at FROM app_posts WHERE id = old.post_id; END;
--> statement-breakpoint
CREATE TRIGGER app_posts_comment_count_move AFTER UPDATE OF post_id ON app_comments WHEN old.post_id IS NOT new.post_id BEGIN UPDATE app_posts SET comment_count = comment_count - 1, version = version + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = old.post_id; DELETE FROM record_changes WHERE collection = 'posts' AND record_id = old.post_id; INSERT INTO record_changes (collection, record_id, owner_id, team_id, version, deleted, changed_at) SELECT 'posts', id, owner_id, NULL, version, 0, updated_at FROM app_posts WHERE id = old.post_id; UPDATE app_posts SET comment_count = comment_count + 1, version = version + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = new.post_id; DELETE FROM record_changes WHERE collection = 'posts' AND record_id = new.post_id; INSERT INTO record_changes (collection, record_id, owner_id, team_id, version, deleted, changed_at) SELECT 'posts', id, owner_id, NULL, version, 0, updated_at FROM app_posts WHERE id = new.post_id; END;
--> statement-breakpoint
UPDATE app_posts SET comment_count = (SELECT count(*) FROM app_comments AS child WHERE child.post_id = app_posts.id);
