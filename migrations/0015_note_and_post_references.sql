ALTER TABLE `app_notes` ADD `list_id` text;--> statement-breakpoint
CREATE INDEX `app_notes_list_id_created_idx` ON `app_notes` (`list_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_list_id_updated_idx` ON `app_notes` (`list_id`,`updated_at`,`id`);--> statement-breakpoint
ALTER TABLE `app_posts` ADD `from_note_id` text;--> statement-breakpoint
CREATE INDEX `app_posts_from_note_id_created_idx` ON `app_posts` (`from_note_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_posts_from_note_id_updated_idx` ON `app_posts` (`from_note_id`,`updated_at`,`id`);