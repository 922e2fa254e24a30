DROP INDEX `files_owner_idx`;--> statement-breakpoint
CREATE INDEX `files_owner_idx` ON `files` (`owner_id`,`id`,`size`);--> statement-breakpoint
DROP INDEX `uploads_owner_idx`;--> statement-breakpoint
CREATE INDEX `uploads_owner_idx` ON `uploads` (`owner_id`,`completed_at`,`upload_length`);