CREATE TABLE `app_comments` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`version` integer NOT NULL,
	`post_id` text NOT NULL,
	`reply_to` text,
	`text` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `app_comments_owner_created_idx` ON `app_comments` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_comments_created_idx` ON `app_comments` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_comments_owner_updated_idx` ON `app_comments` (`owner_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_comments_updated_idx` ON `app_comments` (`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_comments_post_id_created_idx` ON `app_comments` (`post_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_comments_post_id_updated_idx` ON `app_comments` (`post_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_comments_reply_to_created_idx` ON `app_comments` (`reply_to`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_comments_reply_to_updated_idx` ON `app_comments` (`reply_to`,`updated_at`,`id`);--> statement-breakpoint
DROP INDEX `app_items_team_id_list_id_created_at_idx`;--> statement-breakpoint
CREATE INDEX `app_items_list_id_created_idx` ON `app_items` (`list_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_items_list_id_updated_idx` ON `app_items` (`list_id`,`updated_at`,`id`);