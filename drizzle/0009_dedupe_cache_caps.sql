CREATE TABLE `response_cache` (
	`tenant` text NOT NULL,
	`body_hash` text NOT NULL,
	`response_status` integer NOT NULL,
	`response` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`tenant`, `body_hash`)
);
--> statement-breakpoint
CREATE INDEX `response_cache_expires` ON `response_cache` (`expires_at`);--> statement-breakpoint
CREATE INDEX `response_cache_tenant_created` ON `response_cache` (`tenant`,`created_at`);--> statement-breakpoint
ALTER TABLE `batches` ADD `dedupe` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `deduplicated_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `response_cache_ttl_ms` integer;--> statement-breakpoint
ALTER TABLE `batches` ADD `cached_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `max_cost_usd` real;--> statement-breakpoint
ALTER TABLE `requests` ADD `body_hash` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `duplicate_of` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `cached` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX `requests_duplicate_of` ON `requests` (`duplicate_of`) WHERE duplicate_of is not null;