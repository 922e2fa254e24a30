CREATE TABLE `config_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `config_values` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`rules` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `short_links` (
	`code` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`path` text NOT NULL,
	`fallback_url` text,
	`title` text,
	`image_url` text,
	`clicks` integer DEFAULT 0 NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`owner_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `short_links_owner_idx` ON `short_links` (`owner_id`,`created_at`,`code`);--> statement-breakpoint
CREATE INDEX `short_links_created_idx` ON `short_links` (`created_at`,`code`);