CREATE TABLE `idempotency_keys` (
	`scope` text NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`state` text NOT NULL,
	`status` integer,
	`headers` text,
	`body` text,
	`lock_id` text NOT NULL,
	`locked_at` text NOT NULL,
	`expires_at` text NOT NULL,
	PRIMARY KEY(`scope`, `key`)
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_expires_idx` ON `idempotency_keys` (`expires_at`);--> statement-breakpoint
CREATE TABLE `record_changes` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`collection` text NOT NULL,
	`record_id` text NOT NULL,
	`owner_id` text,
	`version` integer NOT NULL,
	`deleted` integer NOT NULL,
	`changed_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `record_changes_record_unique` ON `record_changes` (`collection`,`record_id`);--> statement-breakpoint
CREATE INDEX `record_changes_collection_seq_idx` ON `record_changes` (`collection`,`seq`);--> statement-breakpoint
CREATE INDEX `record_changes_owner_seq_idx` ON `record_changes` (`collection`,`owner_id`,`seq`);--> statement-breakpoint
CREATE TABLE `app_notes` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`version` integer NOT NULL,
	`title` text NOT NULL,
	`body` text DEFAULT '' NOT NULL,
	`pinned` integer DEFAULT false NOT NULL,
	`tags` text DEFAULT '[]' NOT NULL
);
--> statement-breakpoint
CREATE INDEX `app_notes_owner_created_idx` ON `app_notes` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_owner_updated_idx` ON `app_notes` (`owner_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_notes_created_idx` ON `app_notes` (`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `app_posts` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`version` integer NOT NULL,
	`text` text NOT NULL,
	`image_file_id` text
);
--> statement-breakpoint
CREATE INDEX `app_posts_owner_created_idx` ON `app_posts` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_posts_owner_updated_idx` ON `app_posts` (`owner_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `app_posts_created_idx` ON `app_posts` (`created_at`,`id`);