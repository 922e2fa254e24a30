CREATE TABLE `appcheck_attest_keys` (
	`key_id` text PRIMARY KEY NOT NULL,
	`app_id` text NOT NULL,
	`public_key` text NOT NULL,
	`counter` integer NOT NULL,
	`environment` text NOT NULL,
	`created_at` text NOT NULL,
	`last_used_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `appcheck_challenges` (
	`challenge` text PRIMARY KEY NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `appcheck_counts` (
	`day` text NOT NULL,
	`platform` text NOT NULL,
	`reason` text NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`day`, `platform`, `reason`)
);
--> statement-breakpoint
CREATE TABLE `appcheck_debug_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text NOT NULL,
	`last_used_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `appcheck_debug_tokens_token_hash_unique` ON `appcheck_debug_tokens` (`token_hash`);