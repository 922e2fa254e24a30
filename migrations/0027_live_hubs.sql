CREATE TABLE `live_hubs` (
	`collection` text NOT NULL,
	`kind` text NOT NULL,
	`subject` text NOT NULL,
	PRIMARY KEY(`collection`, `kind`, `subject`)
);
