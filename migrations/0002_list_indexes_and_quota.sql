DROP INDEX `files_owner_idx`;--> statement-breakpoint
CREATE INDEX `files_owner_idx` ON `files` (`owner_id`,`id`,`size`);--> statement-breakpoint
DROP INDEX `uploads_owner_idx`;--> statement-breakpoint
CREATE INDEX `uploads_owner_idx` ON `uploads` (`owner_id`,`completed_at`,`upload_length`);--> statement-breakpoint
CREATE INDEX `app_notes_updated_idx` ON `app_notes` (`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_owner_title_idx` ON `app_notes` (`owner_id`,`title`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_title_idx` ON `app_notes` (`title`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_owner_id_pinned_updated_at_idx` ON `app_notes` (`owner_id`,`pinned`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_posts_updated_idx` ON `app_posts` (`updated_at`,`id`);