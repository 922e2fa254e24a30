CREATE TABLE `token_revocations` (
	`user_id` text PRIMARY KEY NOT NULL,
	`revoked_at` integer NOT NULL,
	`reason` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `token_revocations_revoked_at` ON `token_revocations` (`revoked_at`);