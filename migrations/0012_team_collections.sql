CREATE TABLE `app_items` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`version` integer NOT NULL,
	`team_id` text NOT NULL,
	`list_id` text NOT NULL,
	`text` text NOT NULL,
	`done` integer DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE INDEX `app_items_team_created_idx` ON `app_items` (`team_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_items_created_idx` ON `app_items` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_items_team_updated_idx` ON `app_items` (`team_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_items_updated_idx` ON `app_items` (`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_items_owner_created_idx` ON `app_items` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_items_team_id_list_id_created_at_idx` ON `app_items` (`team_id`,`list_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `app_lists` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`version` integer NOT NULL,
	`team_id` text NOT NULL,
	`title` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `app_lists_team_created_idx` ON `app_lists` (`team_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_lists_created_idx` ON `app_lists` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_lists_team_updated_idx` ON `app_lists` (`team_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_lists_updated_idx` ON `app_lists` (`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_lists_team_title_idx` ON `app_lists` (`team_id`,`title`,`id`);--> statement-breakpoint
CREATE INDEX `app_lists_title_idx` ON `app_lists` (`title`,`id`);--> statement-breakpoint
CREATE INDEX `app_lists_owner_created_idx` ON `app_lists` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
ALTER TABLE `record_changes` ADD `team_id` text;--> statement-breakpoint
CREATE INDEX `record_changes_team_seq_idx` ON `record_changes` (`collection`,`team_id`,`seq`) WHERE team_id IS NOT NULL;