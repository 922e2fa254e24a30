CREATE TABLE `event_listeners` (
	`event` text NOT NULL,
	`source` text NOT NULL,
	PRIMARY KEY(`event`, `source`)
);
--> statement-breakpoint
CREATE TABLE `event_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL,
	`target` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`last_status` integer,
	`next_attempt_at` text NOT NULL,
	`lease_until` text,
	`created_at` text NOT NULL,
	`finished_at` text,
	FOREIGN KEY (`seq`) REFERENCES `events`(`seq`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `event_runs_seq_target_unique` ON `event_runs` (`seq`,`target`);--> statement-breakpoint
CREATE INDEX `event_runs_due_idx` ON `event_runs` (`next_attempt_at`) WHERE status IN ('pending', 'running');--> statement-breakpoint
CREATE INDEX `event_runs_target_idx` ON `event_runs` (`target`,`created_at`);--> statement-breakpoint
CREATE INDEX `event_runs_parked_idx` ON `event_runs` (`created_at`) WHERE status = 'parked';--> statement-breakpoint
CREATE TABLE `events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event` text NOT NULL,
	`record_id` text NOT NULL,
	`record` text,
	`previous` text,
	`at` text NOT NULL,
	`dispatched` integer DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_undispatched_idx` ON `events` (`seq`) WHERE dispatched = 0;--> statement-breakpoint
CREATE INDEX `events_at_idx` ON `events` (`at`);--> statement-breakpoint
CREATE TABLE `webhooks` (
	`id` text PRIMARY KEY NOT NULL,
	`url` text NOT NULL,
	`events` text NOT NULL,
	`secret` text NOT NULL,
	`previous_secret` text,
	`previous_until` text,
	`enabled` integer DEFAULT true NOT NULL,
	`failing_since` text,
	`disabled_at` text,
	`created_by` text,
	`created_at` text NOT NULL,
	FOREIGN KEY (`created_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `webhooks_created_idx` ON `webhooks` (`created_at`);