CREATE TABLE `otp_codes` (
	`email` text PRIMARY KEY NOT NULL,
	`code_hash` text NOT NULL,
	`token_hash` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`expires_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `otp_codes_token_unique` ON `otp_codes` (`token_hash`);--> statement-breakpoint
CREATE INDEX `otp_codes_expires_idx` ON `otp_codes` (`expires_at`);--> statement-breakpoint
ALTER TABLE `users` ADD `locale` text;