CREATE TABLE `apple_revocations` (
	`id` text PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL,
	`sealed_refresh_token` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `apple_revocations_next_idx` ON `apple_revocations` (`next_attempt_at`);