ALTER TABLE `uploads` ADD `team_id` text;--> statement-breakpoint
CREATE INDEX `uploads_team_idx` ON `uploads` (`team_id`) WHERE "uploads"."team_id" IS NOT NULL;