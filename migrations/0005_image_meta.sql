ALTER TABLE `files` ADD `width` integer;--> statement-breakpoint
ALTER TABLE `files` ADD `height` integer;--> statement-breakpoint
ALTER TABLE `files` ADD `placeholder` text;--> statement-breakpoint
ALTER TABLE `uploads` ADD `scrub` text;