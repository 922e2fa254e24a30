CREATE INDEX `app_notes_updated_idx` ON `app_notes` (`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_owner_title_idx` ON `app_notes` (`owner_id`,`title`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_title_idx` ON `app_notes` (`title`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_owner_id_pinned_updated_at_idx` ON `app_notes` (`owner_id`,`pinned`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_posts_updated_idx` ON `app_posts` (`updated_at`,`id`);