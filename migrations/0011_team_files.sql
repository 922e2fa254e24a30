ALTER TABLE `files` ADD `team_id` text;--> statement-breakpoint
CREATE INDEX `files_team_idx` ON `files` (`team_id`,`created_at`,`id`);