CREATE TABLE `tenant_quotas` (
	`tenant` text PRIMARY KEY NOT NULL,
	`tokens_per_day` integer,
	`cost_per_day` real,
	`open_batches` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tenant_usage` (
	`tenant` text NOT NULL,
	`day` text NOT NULL,
	`tokens` integer DEFAULT 0 NOT NULL,
	`cost` real DEFAULT 0 NOT NULL,
	PRIMARY KEY(`tenant`, `day`)
);
--> statement-breakpoint
ALTER TABLE `batches` ADD `quota_paused` integer DEFAULT false NOT NULL;