CREATE TABLE `batch_guards` (
	`must_hold` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `record_change_horizons` (
	`collection` text PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL,
	`pruned_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `record_changes_tombstones_idx` ON `record_changes` (`changed_at`) WHERE deleted = 1;